"""Keras 3 models of the book: modality encoders and the fusion model builder.

Encoders are explained in the chapter on feature extraction, fusion models in the chapter on
fusion. Importing this package registers every custom layer, so ``keras.models.load_model`` can
read the book's ``.keras`` files.
"""

from mmtutor.models.encoders import (
    audio_encoder,
    image_encoder,
    point_set_encoder,
    tabular_encoder,
    text_encoder,
)
from mmtutor.models.fusion_model import (
    FUSION_NAMES,
    build_fusion_model,
    compile_fusion_model,
    load_fusion_model,
)

__all__ = [
    "image_encoder", "text_encoder", "audio_encoder", "tabular_encoder", "point_set_encoder",
    "build_fusion_model", "compile_fusion_model", "load_fusion_model", "FUSION_NAMES",
]
