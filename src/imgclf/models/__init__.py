"""The model registry: the course ConvNets, selected by name.

``list_models()`` names them; ``create_model(name, input_shape, num_classes, class_mode)`` builds
one as a Keras model that takes raw uint8 pixels and rescales them itself.
"""

from imgclf.models import convnets as _convnets  # noqa: F401  (fills the registry)
from imgclf.models._registry import ModelSpec, create_model, get_model_spec, list_models, register_model
from imgclf.models.precision import PRECISIONS, inference_model, resolve_precision, with_precision

__all__ = [
    "PRECISIONS",
    "resolve_precision",
    "inference_model",
    "with_precision",
    "ModelSpec",
    "create_model",
    "get_model_spec",
    "list_models",
    "register_model",
]
