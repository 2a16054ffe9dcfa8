"""Update a run: train on from its model with new images and new classes (``imgclf train DATA --from RUN``).

The parent's classes keep their output units, in their order; a class folder the parent did not have gets a new unit
after them (the kernel column small, its bias the mean of the old ones: training sets it). A parent class missing from
the data is refused — its unit would keep answering for images no longer taught. The model's architecture and image
settings must be the parent's (they are taken from its record when not given). With a frozen backbone only the head
trains, on cached features: seconds. For the prototypes head, every prototype is computed again from the data.
The new run records its parent (``from:`` in ``config.yaml``); :mod:`imgclf.evaluation.update` measures what the
old classes lost.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np

from imgclf.data.samples import Dataset
from imgclf.errors import ImgclfError
from imgclf.models.precision import OUTPUT_LAYER
from imgclf.runs import record as runfiles


@dataclasses.dataclass(frozen=True)
class Parent:
    """The run an update starts from.

    Attributes:
        folder: its run folder.
        model: its trained model (``model.keras``).
        classes: its classes, in output order.
        class_mode: its class mode (``binary``: one sigmoid unit).
        new_classes: the classes of the data it did not have, in the order their units are added.
    """

    folder: Path
    model: keras.Model
    classes: tuple[str, ...]
    class_mode: str
    new_classes: tuple[str, ...]


def parent_run(run: str | os.PathLike, dataset: Dataset, resolved) -> tuple[Parent, Dataset]:
    """The parent of an update and ``dataset`` with its classes in the updated model's output order (the parent's,
    then the new ones, sorted).

    Raises:
        ImgclfError: not a run folder; other model, backbone, head or image settings than the parent's; a parent
            class the data lacks.
    """
    folder = runfiles.check_run_dir(run)
    try:
        record = runfiles.RunConfig.read(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImgclfError(f"cannot read the run record in {str(run)!r}: {exc}") from None
    theirs, ours = record.resolved, {"model": resolved.model, "backbone": resolved.backbone}
    if resolved.backbone is not None:
        ours["head"] = resolved.head
    differ = [k for k, v in ours.items() if theirs.get(k) != v]
    if differ or record.image != resolved.image:
        wanted = {k: theirs.get(k) for k in ours} | record.image.to_dict()
        given = ours | resolved.image.to_dict()
        raise ImgclfError(f"--from {str(run)!r}: the run was trained with {wanted}; these settings give {given}. "
                          "Expected the same (leave them out to take the run's).")  # fmt: skip
    old = tuple(record.classes)
    missing = [c for c in old if c not in dataset.class_names]
    if missing:
        raise ImgclfError(f"--from {str(run)!r}: the data has no class folder {missing[0]!r}, a class of the run. "
                          "A class cannot be removed by updating (its output unit would keep answering): give its "
                          "images, or train a new run without it.")  # fmt: skip
    new = tuple(sorted(c for c in dataset.class_names if c not in old))
    model = runfiles.load_model_file(folder / runfiles.MODEL_FILE)
    parent = Parent(folder, model, old, theirs.get("class_mode") or "categorical", new)
    return parent, in_order(dataset, old + new)


def in_order(dataset: Dataset, order: tuple[str, ...]) -> Dataset:
    """``dataset`` with its class indices renumbered to ``order`` (the same class names)."""
    mapping = np.asarray([order.index(c) for c in dataset.class_names], np.int32)

    def renumbered(samples):
        return None if samples is None else dataclasses.replace(samples, labels=mapping[np.asarray(samples.labels)])

    return dataclasses.replace(dataset, class_names=tuple(order), train=renumbered(dataset.train),
                               validation=renumbered(dataset.validation))  # fmt: skip


def take_weights(model: keras.Model, parent: Parent, class_mode: str) -> None:
    """Copy the parent's weights into ``model`` (the same architecture, built for the updated classes): every layer
    as it is, and the output layer's units for the parent's classes, with new units appended.

    Raises:
        ImgclfError: the models differ in a layer (not the same architecture).
    """
    for layer in model.layers:
        if not layer.weights or layer.name == OUTPUT_LAYER:
            continue
        try:
            layer.set_weights(parent.model.get_layer(layer.name).get_weights())
        except ValueError as exc:
            raise ImgclfError(f"--from {str(parent.folder)!r}: its model differs in layer {layer.name!r} "
                              f"({str(exc)[:200]}).") from None  # fmt: skip
    kernel, bias = parent.model.get_layer(OUTPUT_LAYER).get_weights()
    if parent.class_mode == "binary" and class_mode != "binary":  # one sigmoid unit = two softmax units, 0 and z
        kernel = np.concatenate([np.zeros_like(kernel), kernel], axis=1)
        bias = np.concatenate([np.zeros_like(bias), bias])
    output = model.get_layer(OUTPUT_LAYER)
    fresh_kernel, _ = output.get_weights()
    added = fresh_kernel.shape[1] - kernel.shape[1]
    if added:
        kernel = np.concatenate([kernel, 0.1 * fresh_kernel[:, kernel.shape[1] :]], axis=1)
        bias = np.concatenate([bias, np.full(added, bias.mean(), bias.dtype)])
    output.set_weights([kernel, bias])
