"""Data for the book: the embedded "spoken reviews" dataset and a loader for any dataset in its format.

Defined in the chapter on preprocessing ("Meet the data").

- :func:`load_spoken_reviews` returns the default dataset, generating it once into a cache folder;
- :func:`make_spoken_reviews` generates a dataset with chosen knobs into a folder;
- :func:`sample_factors`, :func:`bayes_ceilings`, :func:`bayes_predict` expose the generative
  model and the best accuracy any model can reach on it;
- :func:`load_manifest` reads and checks a dataset folder (``manifest.csv`` + files), yours or
  generated, into a :class:`MultimodalDataset`;
- :func:`voice_review` and :func:`mmtutor.data.speech.synthesize` speak text with espeak-ng.
"""

from mmtutor.data.manifest import (
    MODALITIES,
    REQUIRED_COLUMNS,
    SPLITS,
    DataError,
    MultimodalDataset,
    load_manifest,
)
from mmtutor.data.spoken_reviews import (
    DEFAULT_KNOBS,
    DEFAULT_N,
    SAMPLE_RATE,
    TONES,
    bayes_ceilings,
    bayes_predict,
    check_knobs,
    default_home,
    load_spoken_reviews,
    make_spoken_reviews,
    sample_factors,
    voice_review,
)

__all__ = [
    "MODALITIES", "REQUIRED_COLUMNS", "SPLITS", "DataError", "MultimodalDataset", "load_manifest",
    "DEFAULT_KNOBS", "DEFAULT_N", "SAMPLE_RATE", "TONES", "bayes_ceilings", "bayes_predict",
    "check_knobs", "default_home", "load_spoken_reviews", "make_spoken_reviews", "sample_factors",
    "voice_review",
]
