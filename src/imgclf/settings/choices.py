"""The choices of the settings that name one of a few values: declared once, here; the settings declare them as
their constraints (:mod:`imgclf.settings`) and the parts that implement them use the same tuples."""

#: Optimizers by their Keras names (:data:`imgclf.training.optimizers.OPTIMIZERS` makes them).
OPTIMIZERS = ("rmsprop", "adam", "adamw", "sgd")
#: Learning-rate schedules over the training steps (:func:`imgclf.training.optimizers.learning_rate_schedule`).
LR_SCHEDULES = ("constant", "cosine")
#: Learning-rate schedules of the fine-tuning phase.
FINE_TUNE_SCHEDULES = ("cosine", "constant")
#: Values of ``class_mode``: ``auto`` and Keras' ``flow_from_directory`` modes (:mod:`imgclf.pipeline.tfdata`).
CLASS_MODES = ("auto", "binary", "categorical", "sparse")
#: Where decoded images are kept between epochs (:func:`imgclf.pipeline.tfdata.choose_cache`); ``True`` and
#: ``False`` mean ``memory`` and ``none``, as before there was a disk cache.
CACHE_MODES = ("auto", "memory", "disk", "none")
CACHE_ALIASES = {True: "memory", False: "none", "true": "memory", "false": "none"}
#: Values of ``distribute`` (:mod:`imgclf.training.distributed.cluster`).
DISTRIBUTE = ("none", "mirrored", "multi-worker")
#: Training precisions (:func:`imgclf.models.precision.resolve_precision`).
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
#: What decides "unknown" (:mod:`imgclf.unknown.detector`).
OOD_METHODS = ("knn", "mahalanobis", "energy", "msp")
#: Colour modes (:data:`imgclf.data.images.COLOR_MODES` reads them with Pillow).
COLOR_MODES = ("rgb", "grayscale")
#: Resize filters by their Keras ``load_img`` / Pillow names (:data:`imgclf.data.images.INTERPOLATIONS`).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
#: ``keras.optimizers.AdamW``'s default weight decay, the one imgclf uses for ``adamw`` when none is given.
ADAMW_WEIGHT_DECAY = 0.004
#: What ``target_accuracy`` watches.
MONITORS = ("accuracy", "val_accuracy")
#: The default resize filter: Keras ``load_img`` / ``flow_from_directory``'s, so results match the course's
#: pipeline (measured on cats_and_dogs_filtered: see bench/README.md).
DEFAULT_INTERPOLATION = "nearest"
