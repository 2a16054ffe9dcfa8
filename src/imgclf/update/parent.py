"""Update a run: train on from its model with new images and new classes (``imgclf train DATA --from RUN``).

The parent's classes keep their output units, in their order; a class folder the parent did not have gets a new unit
after them, small, with the old units' mean bias; training sets it. (Setting it from the class's mean penultimate
features, as weight imprinting does for normalised features — Qi et al. 2018 — made every image the new class: a
``gap`` head's features are not normalised. The prototypes head is normalised: there every prototype is computed
anew.) The parent's kept training images (``RUN/rehearsal/``, :func:`write_rehearsal`) are added to the training
images, so that its classes are rehearsed even when the data holds few of their images. A parent class missing from
the data is refused — its unit would keep answering for images no longer taught. The model's architecture and image
settings must be the parent's (they are taken from its record when not given). With a frozen backbone only the head
trains, on cached features: seconds. For the prototypes head, every prototype is computed again from the data.
The new run records its parent (``from:`` in ``config.yaml``); :mod:`imgclf.update.measure` measures what the
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
from imgclf.settings import Settings


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
    folder, record = runfiles.read_run(run)
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
    return parent, with_rehearsal(in_order(dataset, old + new), folder / runfiles.REHEARSAL_DIR)


def annealed(settings, resolved):
    """``(settings, resolved)`` of an update: its learning rate annealed to 0 along a half cosine over its steps
    (``lr_schedule="cosine"``, SGDR's annealing, Loshchilov & Hutter 2017) unless a schedule, ``reduce_lr`` or a
    recipe's schedule was given — recorded as a setting, so ``--resume`` replays it.

    Why: an update continues a trained head, and at a constant rate its last epoch is one draw from the rate's noise
    (validation accuracy 0.947-0.980 from epoch to epoch). Cats and dogs + a new class ``faces`` ``--from`` a cats/dogs
    run, four seeds (bench/README.md): the old classes moved −1.3, −0.6, −1.0, −0.3 points at the constant rate;
    −0.3, −0.1, +0.2, +0.1 annealed (faces 1.000 either way); new images (500 → 2,000 training images) 0.976 annealed
    against 0.979 at the constant rate, where a tenth of the rate annealed reached only 0.962.
    """
    if settings.lr_schedule is not None or resolved.lr_schedule != "constant" or resolved.reduce_lr is not None:
        return settings, resolved
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)} | {"lr_schedule": "cosine"}
    return Settings(**values), dataclasses.replace(resolved, lr_schedule="cosine")  # the estimator's own unchanged


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
    if added:  # small: training sets them
        kernel = np.concatenate([kernel, 0.1 * fresh_kernel[:, kernel.shape[1] :]], axis=1)
        bias = np.concatenate([bias, np.full(added, bias.mean(), bias.dtype)])
    output.set_weights([kernel, bias])


#: Training images a run keeps of each class (``RUN/rehearsal/<class>/``) for the updates that start from it, and
#: at most in all (fewer a class when there are many classes: 1,000 classes keep 2 each, ~30 MB).
REHEARSAL_PER_CLASS = 32
REHEARSAL_MAX = 2000


def write_rehearsal(run: Path, dataset: Dataset, image, seed: int = 0, per_class: int = REHEARSAL_PER_CLASS) -> int:
    """Keep up to ``per_class`` training images of each class (at most :data:`REHEARSAL_MAX` in all; a seeded draw)
    in ``run/rehearsal/<class>/`` as JPEGs (PNG for grayscale) at the run's input size, so that an update from this
    run rehearses its classes even when the data no longer holds their images (van de Ven et al. 2020: replay).
    Returns how many were kept; none for packed data.

    Raises:
        OSError: the folder cannot be written.
    """
    from PIL import Image

    train = dataset.train
    if train is None or train.records is not None or not len(train):
        return 0
    rng = np.random.default_rng(seed)
    labels = np.asarray(train.labels)
    per_class = max(1, min(per_class, REHEARSAL_MAX // max(dataset.num_classes, 1)))
    kept = 0
    for k, name in enumerate(dataset.class_names):
        rows = np.flatnonzero(labels == k)
        for i, row in enumerate(rng.permutation(rows)[:per_class]):
            try:
                pixels = train.images[row] if train.images is not None else image.read(train.paths[row])
            except ImgclfError:  # unreadable: training skipped it too
                continue
            folder = run / runfiles.REHEARSAL_DIR / name
            folder.mkdir(parents=True, exist_ok=True)
            grey = pixels.shape[-1] == 1
            picture = Image.fromarray(pixels[..., 0] if grey else pixels)
            picture.save(folder / f"{i:03d}.{'png' if grey else 'jpg'}", **({} if grey else {"quality": 95}))
            kept += 1
    return kept


def with_rehearsal(dataset: Dataset, folder: Path) -> Dataset:
    """``dataset`` with the rehearsal images of ``folder`` (``<class>/<file>``) added to its training images, for
    the classes it has (file-based data only: packed or pixel data is returned as it is)."""
    train = dataset.train
    if not folder.is_dir() or train is None or train.images is not None or train.records is not None:
        return dataset
    paths, labels = [], []
    for k, name in enumerate(dataset.class_names):
        files = sorted((folder / name).glob("*")) if (folder / name).is_dir() else []
        paths += [str(f) for f in files if f.is_file()]
        labels += [k] * sum(f.is_file() for f in files)
    if not paths:
        return dataset
    labels = np.concatenate([np.asarray(train.labels), np.asarray(labels, np.int32)])
    grown = dataclasses.replace(train, paths=tuple(train.paths) + tuple(paths), labels=labels)
    return dataclasses.replace(dataset, train=grown)
