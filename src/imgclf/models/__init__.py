"""The model registries: the course ConvNets and the pretrained backbones, selected by name.

``list_models()`` names the ConvNets, ``backbones.list_backbones()`` the backbones; ``create_model(name,
input_shape, num_classes, class_mode, pretrained=...)`` builds either as a Keras model that takes raw uint8
pixels and preprocesses them itself.
"""

from imgclf.models import convnets as _convnets  # noqa: F401  (fills the registry)
from imgclf.models import modern as _modern  # noqa: F401  (fills the registry)
from imgclf.models._registry import (
    ModelSpec,
    build_convnet,
    count_parameters,
    get_model_spec,
    list_models,
    register_model,
)
from imgclf.models.factory import create_model
from imgclf.models.precision import PRECISIONS, inference_model, resolve_precision, with_precision

__all__ = [
    "PRECISIONS",
    "resolve_precision",
    "inference_model",
    "with_precision",
    "ModelSpec",
    "create_model",
    "build_convnet",
    "count_parameters",
    "get_model_spec",
    "list_models",
    "register_model",
]
