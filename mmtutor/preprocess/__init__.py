"""Preprocessing of the three modalities and whole-dataset feature extraction.

Defined in the chapter on preprocessing.

- images (:mod:`mmtutor.preprocess.image`): OpenCV loading (BGR -> RGB), resizing, scaling to
  [0, 1], standardisation with training statistics, Keras augmentation layers;
- text (:mod:`mmtutor.preprocess.text`): :class:`TextVectorizer`, a vocabulary fitted on the
  training split, saved and loaded as JSON;
- audio (:mod:`mmtutor.preprocess.audio`): fixed-length loading, log-mel spectrogram, MFCC
  (computed from the log-mel: a different thing), SpecAugment masking, white noise at a set SNR;
- :func:`extract_features` (:mod:`mmtutor.preprocess.features`): a whole dataset to arrays,
  batched, with an on-disk cache.
"""

from mmtutor.preprocess.audio import (
    ACTIVE_LEVEL, AMIN, DB_FLOOR, add_noise, fit_audio_stats, load_audio, log_mel, mfcc, mfcc_from_log_mel, num_frames, spec_augment,
    speech_power, standardize_audio,
)
from mmtutor.preprocess.features import AUDIO_DEFAULTS, extract_features, feature_cache_key, featurize
from mmtutor.preprocess.image import augmentation, fit_image_stats, load_image, load_images, standardize
from mmtutor.preprocess.text import TextVectorizer

__all__ = [
    "load_image", "load_images", "fit_image_stats", "standardize", "augmentation",
    "TextVectorizer",
    "load_audio", "log_mel", "mfcc", "mfcc_from_log_mel", "spec_augment", "add_noise", "speech_power",
    "num_frames", "AMIN", "DB_FLOOR", "ACTIVE_LEVEL",
    "fit_audio_stats", "standardize_audio",
    "extract_features", "featurize", "feature_cache_key", "AUDIO_DEFAULTS",
]
