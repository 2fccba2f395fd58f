"""Training runs: settings, pretraining, training, and the run folder.

Defined in the chapter on the sentiment project. One module per job:

- :mod:`mmtutor.runs.config` -- :class:`RunConfig`, every setting of a run once, validated;
- :mod:`mmtutor.runs.pretrain` -- :func:`pretrain_encoders`, the one pretraining of encoders on
  each modality's own annotation (used by ``train_run``, the fusion chapter and the benchmark);
- :mod:`mmtutor.runs.train` -- :func:`train_run`: features -> model -> fit -> evaluate -> write;
- :mod:`mmtutor.runs.folder` -- the run folder's layout, :class:`Run` and :func:`load_run`.
"""

from mmtutor.runs.config import AUDIO_KINDS, FUSIONS, PRETRAIN_EPOCHS, TEXT_KINDS, TRAIN_AUDIO, RunConfig
from mmtutor.runs.folder import RUN_FILES, RUN_FORMAT, RUN_FORMAT_VERSION, Run, RunError, load_run
from mmtutor.runs.pretrain import ANNOTATIONS, annotation_targets, encoder_cache_key, pretrain_encoders
from mmtutor.runs.train import Features, build_model, evaluate_splits, fit_model, prepare_features, train_run

__all__ = [
    "RunConfig", "FUSIONS", "TEXT_KINDS", "AUDIO_KINDS", "PRETRAIN_EPOCHS", "TRAIN_AUDIO",
    "Run", "RunError", "load_run", "RUN_FILES", "RUN_FORMAT", "RUN_FORMAT_VERSION",
    "ANNOTATIONS", "annotation_targets", "encoder_cache_key", "pretrain_encoders",
    "train_run", "prepare_features", "build_model", "fit_model", "evaluate_splits", "Features",
]
