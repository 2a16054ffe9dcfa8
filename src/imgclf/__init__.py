"""imgclf: turn a folder of images into a trained, inspected, deployable image classifier.

Built on Keras 3 with the TensorFlow backend. The public API:

- :class:`imgclf.ImageClassifier` -- a scikit-learn estimator (``fit``, ``predict``,
  ``predict_proba``, ``score``, ``evaluate``, ``save``, ``load``, ``resume``).
- :class:`imgclf.Predictor` -- a trained model with how to read images for it (``Predictor.from_run``).
- :func:`imgclf.load_folder` -- find the images and labels of a dataset folder.
- :func:`imgclf.find_label_issues` -- the images whose folder (label) is probably wrong.
- :func:`imgclf.models.create_model` / :func:`imgclf.models.list_models` -- the model registry.
"""

import os as _os

# Keras 3 picks its backend from KERAS_BACKEND; imgclf is built on TensorFlow. TensorFlow's C++
# start-up chatter (oneDNN notices, CPU feature guard) is noise for a command-line user.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from imgclf.errors import ImgclfError  # noqa: E402  (imports nothing heavy)

_LAZY = {
    "ImageClassifier": "imgclf.classifier",
    "Dataset": "imgclf.data.folders",
    "load_folder": "imgclf.data.folders",
    "Predictor": "imgclf.predict.predictor",
    "find_label_issues": "imgclf.curation.suspects",
}


def __getattr__(name):
    # Lazy: importing imgclf (and so the CLI's --help) does not load TensorFlow (PEP 562).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'imgclf' has no attribute {name!r}")


__all__ = ["ImageClassifier", "ImgclfError", "Dataset", "Predictor", "load_folder", "find_label_issues", "__version__"]
