"""The settings of a training run, each defined once: :class:`RunConfig`.

Defined in the chapter on the sentiment project. ``train_run`` takes its settings from a
``RunConfig``, writes it into the run's ``config.json`` and checks it again when the folder is
loaded; the ``mmtutor train`` command builds its flags and defaults from the fields below.
"""

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from mmtutor._validation import MODALITIES, check_choice, check_float, check_int, check_modalities

__all__ = ["RunConfig", "FUSIONS", "TEXT_KINDS", "AUDIO_KINDS", "PRETRAIN_EPOCHS", "TRAIN_AUDIO"]

#: Fusion methods of :func:`mmtutor.models.build_fusion_model`.
FUSIONS = ("concat", "late", "attention", "tensor", "lowrank", "gated")
TEXT_KINDS = ("bilstm", "gru", "transformer")
AUDIO_KINDS = ("cnn", "crnn")
#: Default pretraining epochs per modality: the voice is the easiest to read.
PRETRAIN_EPOCHS = {"text": 20, "image": 20, "audio": 5}
#: Log-mel settings of a run unless told otherwise: 32 bands, 20 ms hop (151 frames for 3 s).
TRAIN_AUDIO = {"n_mels": 32, "hop_length": 320}
# Settings that describe preprocessing (stored under "preprocessing" in config.json).
_PREPROCESSING = ("image_size", "seq_len", "audio")


def _help(text, flag=True):
    """Field metadata: the help text of the command-line flag (None: no flag)."""
    return {"help": text, "flag": flag}


@dataclass
class RunConfig:
    """Every setting of a training run, validated, with its default.

    Defined in the chapter on the sentiment project. Build one with keywords
    (``RunConfig(fusion="late", epochs=5)``); an unknown setting is a ``TypeError`` and a bad
    value a ``ValueError`` or ``TypeError`` that names it. ``seed=None`` takes
    :func:`mmtutor.utils.global_seed` (``$MMTUTOR_SEED``, default 0) when the config is made,
    so the stored config always holds the seed that was used.

    Examples
    --------
    >>> from mmtutor.runs import RunConfig
    >>> config = RunConfig(fusion="late", modalities="audio,text", seed=3)
    >>> config.modalities, config.epochs
    (['text', 'audio'], 20)
    >>> RunConfig.from_dict(config.to_dict()) == config
    True
    """

    fusion: str = field(default="concat", metadata=_help("fusion method"))
    modalities: list = field(default_factory=lambda: list(MODALITIES),
                             metadata=_help("comma-separated modalities"))
    epochs: int = field(default=20, metadata=_help("maximum epochs; early stopping may end sooner"))
    batch_size: int = field(default=32, metadata=_help("batch size"))
    lr: float = field(default=1e-3, metadata=_help("initial learning rate of Adam"))
    seed: int = field(default=None, metadata=_help("training seed (default: $MMTUTOR_SEED, or 0)"))
    patience: int = field(default=4, metadata=_help("early-stopping patience in epochs"))
    class_weight: object = field(default="balanced", metadata=_help("'balanced', None or {class: weight}", False))
    modality_dropout: float = field(default=0.0, metadata=_help("probability of hiding each modality of a "
                                                                 "training sample"))
    audio_noise: tuple = field(default=None, metadata=_help("LOW,HIGH: also train on a copy of every training clip "
                                                            "with white noise at an SNR drawn from LOW..HIGH dB"))
    text_kind: str = field(default="gru", metadata=_help("text encoder"))
    audio_kind: str = field(default="cnn", metadata=_help("audio encoder"))
    image_size: tuple = field(default=(32, 32), metadata=_help("(height, width) of the images", False))
    seq_len: int = field(default=24, metadata=_help("token sequence length"))
    audio: dict = field(default=None, metadata=_help("log-mel settings on top of TRAIN_AUDIO", False))
    image_filters: tuple = field(default=(16, 32, 64), metadata=_help("image encoder channels", False))
    audio_filters: tuple = field(default=(16, 32, 64), metadata=_help("audio encoder channels", False))
    embed_dim: int = field(default=64, metadata=_help("token embedding size", False))
    units: int = field(default=64, metadata=_help("recurrent units", False))
    dim: int = field(default=64, metadata=_help("encoder output size", False))
    hidden: int = field(default=64, metadata=_help("classifier width", False))
    dropout: float = field(default=0.1, metadata=_help("dropout rate", False))
    pretrain: str = field(default="auto", metadata=_help("'auto': pretrain each annotated encoder, then "
                                                         "freeze it; None: train end to end", False))
    pretrain_epochs: dict = field(default=None, metadata=_help("pretraining epochs (one number or per modality)",
                                                               False))
    pretrain_lr: float = field(default=3e-3, metadata=_help("pretraining learning rate", False))

    def __post_init__(self):
        from mmtutor.preprocess._checks import check_size
        from mmtutor.utils import global_seed

        self.fusion = check_choice(self.fusion, "fusion", FUSIONS)
        self.modalities = check_modalities(self.modalities)
        if self.fusion == "attention" and len(self.modalities) < 2:
            raise ValueError(f"fusion='attention' needs at least two modalities, got {self.modalities}")
        self.text_kind = check_choice(self.text_kind, "text_kind", TEXT_KINDS)
        self.audio_kind = check_choice(self.audio_kind, "audio_kind", AUDIO_KINDS)
        for name in ("epochs", "batch_size", "patience", "seq_len", "embed_dim", "units", "dim", "hidden"):
            setattr(self, name, check_int(getattr(self, name), name, minimum=1))
        self.seed = global_seed() if self.seed is None else check_int(self.seed, "seed", minimum=0)
        self.lr = check_float(self.lr, "lr", low=0.0, high=1.0, low_open=True)
        self.pretrain_lr = check_float(self.pretrain_lr, "pretrain_lr", low=0.0, high=1.0, low_open=True)
        self.modality_dropout = check_float(self.modality_dropout, "modality_dropout", low=0.0, high=1.0,
                                            high_open=True)
        self.dropout = check_float(self.dropout, "dropout", low=0.0, high=1.0, high_open=True)
        self.audio_noise = self._audio_noise(self.audio_noise)
        self.image_size = tuple(check_size("image_size", self.image_size))
        for name in ("image_filters", "audio_filters"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError(f"{name} must be a sequence of positive integers, got {value!r}")
            value = tuple(check_int(v, f"{name}[{i}]", minimum=1) for i, v in enumerate(value))
            if not value:
                raise ValueError(f"{name} must hold at least one number of channels, got ()")
            setattr(self, name, value)
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be 'balanced', None or a dict class -> weight, got {self.class_weight!r}")
        if isinstance(self.class_weight, dict):
            self.class_weight = {int(k): v for k, v in self.class_weight.items()}
        if self.pretrain not in ("auto", None):
            raise ValueError(f"pretrain must be 'auto' or None, got {self.pretrain!r}")
        self.pretrain_epochs = self._pretrain_epochs(self.pretrain_epochs)
        if self.audio is not None:
            if not isinstance(self.audio, dict):
                raise TypeError(f"audio must be a dict of log-mel settings or None, got {self.audio!r}")
            self.audio = dict(self.audio)

    @staticmethod
    def _audio_noise(value):
        if value is None:
            return None
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (bytes, dict)) or not hasattr(value, "__iter__"):
            raise TypeError(f"audio_noise must be None or (low_db, high_db), got {value!r}")
        value = list(value)
        if len(value) != 2:
            raise ValueError(f"audio_noise must be two SNRs in dB (low, high), got {value!r}")
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"audio_noise must be two SNRs in dB (low, high), got {value!r}") from None
        if not (np.isfinite(low) and np.isfinite(high) and -20.0 <= low <= high <= 60.0):
            raise ValueError(f"audio_noise must satisfy -20 <= low <= high <= 60 (dB), got {value!r}")
        return (low, high)

    @staticmethod
    def _pretrain_epochs(value):
        if value is None:
            epochs = dict(PRETRAIN_EPOCHS)
        elif isinstance(value, dict):
            unknown = sorted(set(value) - set(MODALITIES))
            if unknown:
                raise ValueError(f"pretrain_epochs has unknown modalities {unknown}; allowed: {list(MODALITIES)}")
            epochs = {**PRETRAIN_EPOCHS, **value}
        else:
            epochs = dict.fromkeys(MODALITIES, value)
        return {m: check_int(v, f"pretrain_epochs[{m!r}]", minimum=1) for m, v in epochs.items()}

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self):
        """The settings as JSON-ready Python values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values):
        """A config from :meth:`to_dict`'s output; an unknown or bad setting is an error."""
        if not isinstance(values, dict):
            raise TypeError(f"a run config must be a dict of settings, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise TypeError(f"unknown run settings {unknown}; known: {sorted(names)}")
        values = dict(values)
        if isinstance(values.get("class_weight"), dict):
            values["class_weight"] = {int(k): v for k, v in values["class_weight"].items()}
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"a run config must be JSON: {exc}") from None
        return cls.from_dict(values)

    def replace(self, **changes):
        """A copy with some settings changed (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    # -- the two halves stored in a run's config.json --------------------------------------------

    def knobs(self):
        """The training settings as stored under ``"knobs"`` in ``config.json``."""
        values = {k: v for k, v in self.to_dict().items() if k not in _PREPROCESSING and k != "modalities"}
        values["class_weight"] = None if self.class_weight is None else (
            "balanced" if self.class_weight == "balanced" else {str(k): v for k, v in self.class_weight.items()})
        values["early_stopping"] = {"monitor": "val_loss", "restore_best_weights": True}
        values["lr_schedule"] = {"kind": "ReduceLROnPlateau", "monitor": "val_loss", "factor": 0.5,
                                 "patience": max(1, self.patience // 2), "min_lr": self.lr / 64}
        return values

    @classmethod
    def from_run(cls, config):
        """Rebuild the config of a run from its ``config.json`` content (checks every setting)."""
        knobs = dict(config["knobs"])
        knobs.pop("early_stopping", None)
        knobs.pop("lr_schedule", None)
        prep = config["preprocessing"]
        audio = {k: v for k, v in prep["audio"].items() if k != "seconds"} if prep.get("audio") else None
        return cls.from_dict({**knobs, "modalities": config["modalities"], "image_size": prep["image_size"],
                              "seq_len": prep["seq_len"], "audio": audio})

    @classmethod
    def flags(cls):
        """``(field, help)`` of the settings that ``mmtutor train`` offers as flags."""
        return [(f, f.metadata["help"]) for f in dataclasses.fields(cls) if f.metadata.get("flag")]
