"""Training on several devices or machines with ``tf.distribute`` (the strategy:
:mod:`imgclf.training.distributed.cluster`):
sharded input, restarts from the chief's checkpoint, and a distributed training loop.

Why a loop of our own (:func:`fit`) and not ``keras.Model.fit``: under ``MultiWorkerMirroredStrategy`` (Keras 3.15,
TensorFlow 2.21) ``fit`` fails before its first step, in ``_maybe_symbolic_build`` (``strategy.reduce`` on a
``PerReplica`` batch) and in ``reduce_per_replica`` (scalar metrics reduced along axis 0); keras-team/keras#20585,
tensorflow/tensorflow#72388; ``bench/distribute_repro.py`` reproduces both. The loop is what TensorFlow's custom
training loop tutorial does (``strategy.run`` + ``GradientTape`` + the Keras optimizer, whose ``apply_gradients``
sums the replicas' gradients), drives the same Keras callbacks as ``fit`` (history, checkpoints, early stopping,
learning-rate control, progress), and reduces loss and accuracy over every replica, so each worker sees the same
logs and takes the same decisions.

Batches: ``batch_size`` is the *global* batch, split evenly over the replicas; the loss is the mean over the
images of the global batch (``sum / global count``), so one step is the step a single process takes on that batch
and the learning rate needs no scaling. (If you grow ``batch_size`` with the number of machines, scale the learning
rate with it: the linear scaling rule of Goyal et al. 2017, "Accurate, Large Minibatch SGD".)
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import numpy as np

from imgclf.errors import ImgclfError
from imgclf.training.distributed.cluster import check_batch_size, is_multi_worker, worker_position


def restartable(run: Path | None, record) -> dict | None:
    """The ``state.json`` of an unfinished run in ``run`` that a restarted worker continues, or ``None`` (no run
    there, or one that has finished).

    Args:
        record: the :class:`~imgclf.runs.record.RunConfig` of the run being started.

    Raises:
        ImgclfError: the unfinished run there was trained with other settings or classes.
    """
    from imgclf.runs import record as runfiles

    state = runfiles.unfinished_state(run)
    if state is None:
        return None
    changed = record.changes_from(runfiles.RunConfig.read(run))
    if changed:
        raise ImgclfError(f"{str(run)!r} holds an unfinished run with other {', '.join(changed)}: restart the workers "
                          "with its settings, or train into a new run folder.")  # fmt: skip
    return state


def local_copy(model: keras.Model) -> keras.Model:
    """``model`` with plain variables: itself when they are (no strategy, or a float32 twin already rebuilt outside
    it), else a copy of a model trained under a strategy (mirrored variables) — what prediction, calibration and
    saving use once training is over (call it outside the strategy's scope)."""
    import tensorflow as tf

    if not any(isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in model.weights[:1]):
        return model
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def worker_datasets(strategy, build, batch_size: int):
    """This worker's training and validation datasets (``build()`` itself without a strategy): its shard of each
    split, in batches of its share of the global batch, which :func:`fit` splits over its replicas.

    Plain ``tf.data`` datasets, not ``tf.distribute`` ones: TensorFlow 2.21's distributed iterator wraps each batch
    in datasets of its own, whose tf.data autotuner ends every pass only at its next wake-up (a 5.1 s pass took
    10.3 s), the delay imgclf's datasets switch the autotuner off to avoid.

    Args:
        build: ``build(shard=(num_workers, worker_index), batch_size=images_per_worker)`` returning
            ``(train, validation, choices)`` like :func:`imgclf.training.inputs.training_datasets`.
        batch_size: the global batch.

    Raises:
        ImgclfError: as :func:`imgclf.training.distributed.cluster.check_batch_size`.
    """
    if strategy is None:
        return build()
    check_batch_size(strategy, batch_size)
    count, index = worker_position(strategy)
    return build(shard=(count, index), batch_size=batch_size // count)


def chief_state(strategy, state: dict | None) -> dict | None:
    """The chief's answer to "is this a restart, and from which epoch?", on every worker: ``{"epochs_completed",
    "fine_tune_from_epoch"}`` of the chief's unfinished run, or ``None`` for a new run (multi-worker; otherwise
    ``state`` itself)."""
    if not is_multi_worker(strategy):
        return state
    import tensorflow as tf

    mine = [float(state["epochs_completed"]), float(state.get("fine_tune_from_epoch") or 0)] if state else [-1.0, 0.0]

    def replica():
        return tf.distribute.get_replica_context().all_gather(tf.constant([mine]), axis=0)

    with collectives():
        rows = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica))())[0].numpy()
    done, fine_tune_from = int(rows[0][0]), int(rows[0][1])  # replica 0 is the chief's
    if done < 0:
        return None
    return state if state is not None else {"epochs_completed": done, "fine_tune_from_epoch": fine_tune_from or None}


def copy_checkpoint(checkpoint: keras.Model, model: keras.Model) -> None:
    """Give ``model`` (and its built optimizer) the weights and optimizer state of ``checkpoint``, a model loaded
    from ``last.keras`` with the same layers.

    Raises:
        ImgclfError: the checkpoint's variables do not match the model's (count or shapes).
    """
    for mine, theirs in ((model.variables, checkpoint.variables),
                         (model.optimizer.variables, checkpoint.optimizer.variables)):  # fmt: skip
        if [tuple(v.shape) for v in mine] != [tuple(v.shape) for v in theirs]:
            raise ImgclfError(f"the checkpoint has {len(theirs)} variables that do not match the model's "
                              f"{len(mine)}: it was written by other settings.")  # fmt: skip
        for variable, value in zip(mine, theirs):
            variable.assign(value.value)


def sync_from_chief(strategy, variables) -> None:
    """Give every worker the chief's values of ``variables`` (model and optimizer): after a restart only the chief
    has a checkpoint (multi-worker; nothing to do otherwise)."""
    if not is_multi_worker(strategy) or not variables:
        return
    import tensorflow as tf

    def replica():
        ctx = tf.distribute.get_replica_context()
        first = tf.equal(ctx.replica_id_in_sync_group, 0)
        out = []
        for v in variables:  # one at a time: a packed all-reduce needs a single dtype
            x = tf.convert_to_tensor(v.value)
            x = x if x.dtype.is_floating else tf.cast(x, tf.int64)
            out.append(ctx.all_reduce("SUM", tf.where(first, x, tf.zeros_like(x))))
        return out

    chief = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica))())[0]
    for variable, value in zip(variables, chief):
        variable.assign(tf.cast(value, variable.dtype))


def _steps(strategy, model, table):
    """``(train_step, test_step)``: tf.functions over a distributed batch returning the global sums
    ``(weighted loss, correct predictions, images)``."""
    import tensorflow as tf

    loss_fn = keras.losses.get(model.loss)
    if isinstance(loss_fn, keras.losses.Loss):  # per image: the sums below are over the global batch
        loss_fn = type(loss_fn).from_config({**loss_fn.get_config(), "reduction": None})
    optimizer = model.optimizer
    weights = tf.constant(table, tf.float32) if table is not None else None

    def sums(x, y, training: bool):
        pred = tf.cast(model(x, training=training), tf.float32)
        if pred.shape[-1] == 1:  # binary: one sigmoid output, float targets (batch, 1)
            truth, guess = tf.cast(tf.reshape(y, [-1]) > 0.5, tf.int32), tf.cast(pred[:, 0] > 0.5, tf.int32)
            y = tf.reshape(tf.cast(y, tf.float32), tf.shape(pred))
        else:
            truth = tf.cast(tf.argmax(y, -1), tf.int32) if len(y.shape) > 1 else tf.cast(tf.reshape(y, [-1]), tf.int32)
            guess = tf.cast(tf.argmax(pred, -1), tf.int32)
        per_image = loss_fn(y, pred)
        if weights is not None:
            per_image = per_image * tf.gather(weights, truth)
        return tf.reduce_sum(per_image), tf.reduce_sum(tf.cast(tf.equal(truth, guess), tf.float32))

    # A replica whose input has run out gets an empty batch (uneven shards, the last partial batch); TensorFlow's
    # CPU convolutions fail on one, so an empty batch skips the model: nothing to add, zero gradients.
    def train_replica(x, y):
        count = tf.cast(tf.shape(x)[0], tf.float32)
        global_count = tf.distribute.get_replica_context().all_reduce("SUM", count)
        variables = model.trainable_variables

        def learn():
            with tf.GradientTape() as tape:
                total, correct = sums(x, y, True)
                loss = total / tf.maximum(global_count, 1.0)  # the mean over the global batch
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, variables)
            return [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables)], total, correct

        def idle():
            return [tf.zeros(v.shape, v.dtype) for v in variables], tf.constant(0.0), tf.constant(0.0)

        grads, total, correct = tf.cond(count > 0, learn, idle)
        optimizer.apply_gradients(zip(grads, variables))  # sums the gradients over the replicas
        return total, correct, count

    def test_replica(x, y):
        count = tf.cast(tf.shape(x)[0], tf.float32)
        total, correct = tf.cond(count > 0, lambda: sums(x, y, False), lambda: (tf.constant(0.0), tf.constant(0.0)))
        return total, correct, count

    local = len(strategy.extended.worker_devices)  # this worker's replicas

    def distributed(replica_fn):
        @tf.function(reduce_retracing=True)
        def step(x, y):
            size = -(-tf.shape(x)[0] // local)  # this worker's batch, split over its replicas (the last part smaller)

            def part(t):
                return lambda ctx: t[(ctx.replica_id_in_sync_group % local) * size :][:size]

            args = [strategy.experimental_distribute_values_from_function(part(t)) for t in (x, y)]
            out = strategy.run(replica_fn, args=tuple(args))
            return [strategy.reduce("SUM", v, axis=None) for v in out]

        return step

    return distributed(train_replica), distributed(test_replica)


def _remaining(strategy):
    """A tf.function: how many replicas still have a batch, given whether this one has (``1.0`` or ``0.0``)."""
    import tensorflow as tf

    @tf.function
    def remaining(has):
        out = strategy.run(lambda v: tf.distribute.get_replica_context().all_reduce("SUM", v * 1.0), args=(has,))
        return strategy.experimental_local_results(out)[0]

    return remaining


def _batches(strategy, dataset, remaining):
    """``dataset``'s batches; in a multi-worker cluster, until every worker's have run out, a worker whose shard has
    run out going on with empty batches (every worker must take part in each step's collective operations)."""
    import tensorflow as tf

    if not is_multi_worker(strategy):
        yield from dataset
        return
    empty = tuple(tf.zeros([0, *spec.shape[1:]], spec.dtype) for spec in dataset.element_spec)
    iterator = iter(dataset)
    while True:
        batch = next(iterator, None)
        if float(remaining(tf.constant(float(batch is not None)))) == 0:
            return
        yield batch if batch is not None else empty


def _means(sums) -> dict:
    return {"loss": sums[0] / max(sums[2], 1), "accuracy": sums[1] / max(sums[2], 1)}


def fit(strategy, model: keras.Model, train, validation=None, *, epochs: int, initial_epoch: int = 0,
        callbacks=(), class_weight: dict | None = None, checkpoint: keras.Model | None = None) -> None:  # fmt: skip
    """``model.fit`` for a ``tf.distribute`` strategy: train ``model`` (compiled, made in ``strategy.scope()``) on
    this worker's datasets ``train`` and ``validation`` (:func:`worker_datasets`).

    Callbacks run outside the strategy's scope: a model they build (the float32 twin ``best.keras`` is saved
    from) gets plain variables, made without collective operations between the workers.

    Logs per epoch ``loss`` and ``accuracy`` (means over the epoch's training images: the loss with
    ``class_weight``, as Keras logs it) and ``val_loss``, ``val_accuracy`` over every validation image, reduced over
    all replicas; ``keras.callbacks.Callback`` objects get the calls ``fit`` makes (train, epoch and train-batch
    begin/end) and may stop training through ``model.stop_training``.

    Args:
        epochs, initial_epoch: as ``keras.Model.fit``.
        class_weight: ``{class index: weight}`` or ``None``.
        checkpoint: a model loaded from a run's ``last.keras`` (outside the strategy) whose weights and optimizer
            state ``model`` takes before training on (the chief of a restarted cluster; the other workers then get
            them from the chief).

    Raises:
        ImgclfError: a worker was lost (``tf.errors.UnavailableError`` and other collective failures): restart
            every worker with the same command to resume from the last completed epoch.
    """
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    if checkpoint is not None:
        copy_checkpoint(checkpoint, model)
    with collectives():
        sync_from_chief(strategy, [*model.variables, *model.optimizer.variables])
    table = [class_weight[i] for i in range(len(class_weight))] if class_weight else None  # every class is a key
    train_step, test_step = _steps(strategy, model, table)
    remaining = _remaining(strategy)
    hooks = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs, steps=None, verbose=0)
    model.stop_training = False
    logs: dict = {}
    with collectives():
        hooks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            hooks.on_epoch_begin(epoch)
            total = np.zeros(3)
            for batch, (x, y) in enumerate(_batches(strategy, train, remaining)):
                hooks.on_train_batch_begin(batch)
                total += [float(v) for v in train_step(x, y)]
                hooks.on_train_batch_end(batch, _means(total))
            logs = _means(total)
            if validation is not None:
                seen = np.zeros(3)
                for x, y in _batches(strategy, validation, remaining):
                    seen += [float(v) for v in test_step(x, y)]
                logs.update({f"val_{k}": v for k, v in _means(seen).items()})
            hooks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        hooks.on_train_end(logs)


@contextlib.contextmanager
def collectives():
    """Turn the errors of a collective operation whose peer has gone (``tf.errors.UnavailableError`` and the like)
    into an :class:`~imgclf.errors.ImgclfError` that says what to do."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError,
            tf.errors.InternalError) as exc:  # fmt: skip
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ImgclfError(f"a worker was lost ({type(exc).__name__}: {first[:200]}); restart every worker with the "
                          "same command to resume from the last completed epoch.") from None  # fmt: skip
