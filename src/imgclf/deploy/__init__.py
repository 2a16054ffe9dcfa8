"""Taking a run elsewhere: :mod:`~imgclf.deploy.export` (SavedModel, ONNX, TFLite with parity checks),
:mod:`~imgclf.deploy.runtime` (an export scored in its own runtime, without TensorFlow) and
:mod:`~imgclf.deploy.serve` (the web app and its HTTP API)."""
