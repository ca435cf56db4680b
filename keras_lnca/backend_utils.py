"""Backend-specific helpers: padding, `tf.distribute` data parallelism, compiled inference.

The model's code stays on `keras.ops`; the few places where it has to know
which framework sits under Keras (TensorFlow, JAX or PyTorch) call these
helpers, which are the identity (or plain `keras.ops`) wherever the framework
needs nothing special. (The efficiency benchmark compiles its inference pass
in `keras_lnca.benchmarks.efficiency.compiled`; peak-memory probes for the
benchmarks and the profiler are in `keras_lnca.memory_probe`; the choice of
backend is in `keras_lnca.startup`.)

Data parallelism
----------------
`replica_context()`, `replica_draw()` and `scale_loss_for_replicas()` let the
model's training step run on each replica of a `tf.distribute` strategy
(`MirroredStrategy`), where the step sees only its slice of the global batch;
`distribution_scope(model)` re-enters the strategy a model was created under.
Elsewhere (one device, JAX `keras.distribution.DataParallel`, whose compiled
step sees the global batch, PyTorch) they are the identity.

Padding with unknown shapes
---------------------------
`pad_to_multiple(x, multiple)` reflect-pads NHWC images to a multiple of the
model's cell size, also inside TensorFlow graphs whose height and width are
unknown (where `keras.ops.pad` wants static pad widths).
"""

import contextlib

import keras
from keras import ops

# ---------------------------------------------------------------------------
# Padding with unknown shapes
# ---------------------------------------------------------------------------


def pad_to_multiple(x, multiple):
    """Reflect-pads the bottom and right of NHWC `x` to a multiple of `multiple`.

    Returns the padded tensor. With static spatial sizes (JAX, torch, most
    TensorFlow traces) the pad amounts are Python ints; TensorFlow graphs with
    unknown height/width get the same padding through `tf.pad`, because
    `keras.ops.pad` wants static pad widths.
    """
    if multiple == 1:
        return x
    height, width = x.shape[1], x.shape[2]
    if height is not None and width is not None:
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h == 0 and pad_w == 0:
            return x
        mode = "reflect" if height > pad_h and width > pad_w else "constant"
        return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode=mode)
    if keras.backend.backend() != "tensorflow":
        raise ValueError("Spatial dimensions must be known outside TensorFlow graphs.")
    import tensorflow as tf

    shape = tf.shape(x)
    pad_h, pad_w = -shape[1] % multiple, -shape[2] % multiple
    padded = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    # tf.pad with run-time amounts loses the static channel count, which the
    # TFLite converter needs for builtin convolutions: restore it by a reshape.
    shape = tf.shape(padded)
    return tf.reshape(padded, tf.stack([shape[0], shape[1], shape[2], x.shape[-1]]))


# ---------------------------------------------------------------------------
# Data parallelism (tf.distribute)
# ---------------------------------------------------------------------------


def replica_context():
    """Returns `(replica_id, num_replicas)` of the running training replica.

    Under a `tf.distribute` strategy with several replicas, each replica runs
    the training step on its own slice of the global batch: `replica_id` is
    then an int32 scalar tensor. Everywhere else (one device, a cross-replica
    context, JAX `DataParallel` whose step sees the global batch, PyTorch)
    this returns `(0, 1)`.
    """
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def replica_draw(draw, batch, axis=0):
    """Draws random values for the global batch and keeps this replica's rows.

    Keras seed generators are mirrored under `tf.distribute`: every replica
    holds the same seed state, so per-sample draws made for the local batch
    would repeat on every replica. Drawing for all `num_replicas * batch`
    samples and keeping this replica's slice gives each sample its own
    numbers, the very ones a single device draws for the same global batch.

    Args:
        draw: callable `draw(n)` returning random values with `n` entries
            along `axis`.
        batch: int or scalar tensor, this replica's batch size.
        axis: int, the batch axis of the drawn values.

    Returns:
        The rows `[replica_id * batch, (replica_id + 1) * batch)` of
        `draw(num_replicas * batch)` along `axis`; `draw(batch)` with a
        single replica.
    """
    replica, replicas = replica_context()
    if replicas == 1:
        return draw(batch)
    values = draw(replicas * batch)
    start = [0] * len(values.shape)
    start[axis] = replica * batch
    size = list(ops.shape(values))
    size[axis] = batch
    return ops.slice(values, start, size)


def distribution_scope(model):
    """Re-enters the `tf.distribute` strategy `model` was created under.

    A TensorFlow model must be compiled (its optimizer created) inside the
    scope of the strategy it trains with; `NCAModel.compile` and `set_phase`
    use this so that a phase switch outside `strategy.scope()` still works.
    A no-op context elsewhere.
    """
    if keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext()
    return model.distribute_strategy.scope()


def scale_loss_for_replicas(loss):
    """Divides a replica's loss by the number of replicas in sync.

    `tf.distribute` sums the replicas' gradients, so a loss averaged over a
    replica's slice must be divided by the replica count to give the
    gradient of the global-batch mean (what Keras does for compiled losses;
    its trainer multiplies the reported loss back). The identity elsewhere.
    """
    _, replicas = replica_context()
    if replicas == 1:
        return loss
    return loss * (1.0 / replicas)
