"""Keras 3 models of the book: modality encoders and the fusion model builder."""
