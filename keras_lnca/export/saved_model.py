"""SavedModel export, and the traced serving function that every format converts."""

import re

from keras_lnca.export import parity
from keras_lnca.export import tf_bridge

_RANDOM_OP = re.compile(r"Random|Rng|Multinomial|Shuffle")


def export_saved_model(
    model,
    path,
    input_shape=(256, 256),
    *,
    verify=True,
    steps=None,
    atol=1e-5,
    degradation="gaussian:25",
    num_images=3,
):
    """Exports the inference path as a TensorFlow SavedModel.

    Written with `keras.export.ExportArchive` (what
    `model.export(format="tf_saved_model")` uses), with one endpoint,
    `serve(images)`, whose batch is always resizable. The folder is written
    next to `path`, verified, then moved into place.

    Args:
        model: an `LNCA`/`PixelNCA`, a `.keras` path or a preset name.
        path: the SavedModel folder to write.
        input_shape: `(height, width)`; `(None, None)` accepts any size.
        verify: reload with `tf.saved_model.load` and compare `serve` with
            `model.predict` on random and reference images.
        steps: NCA steps baked into the graph (default: `inference_steps`).
        atol: limit on `max |SavedModel - Keras|`.
        degradation: degradation spec of the reference images.
        num_images: number of test-set crops checked (at least 1).

    Returns:
        An `ExportReport`.

    Raises:
        UserError: a bad argument, an unknown model, or `fire_rate < 1`.
        ExportError: a graph with random ops, or parity beyond `atol`.

    Example:
    ```python
    kl.export.export_saved_model(model, "lnca_savedmodel", input_shape=(None, None))
    import tensorflow as tf
    restored = tf.saved_model.load("lnca_savedmodel").serve(noisy)
    ```
    """
    height, width = parity.check_size(input_shape)
    model, source, steps = tf_bridge.exportable(model, steps)
    shape = (None, height, width, model.input_channels)
    report = parity.ExportReport(format="saved_model", path=str(path), input_shape=shape,
                                 steps=steps)
    with tf_bridge.converted(
        path, model, source, report, write_saved_model, shape=list(shape), steps=steps
    ) as (temporary, _):
        if verify:
            runner = parity.saved_model_runner(temporary)
            parity.run_checks(report, model, runner, shape, steps, degradation, num_images)
            parity.enforce_limits(report, "SavedModel", max_abs_diff=atol)
    return report


def serving_function(model, shape, steps, unroll=False):
    """The traced inference function; fails if its graph holds a random op."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    def serve(images):
        return model(images, training=False, steps=steps, unroll=unroll)

    graph = serve.get_concrete_function().graph.as_graph_def()
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes.extend(function.node_def)
    random_ops = sorted({node.op for node in nodes if _RANDOM_OP.search(node.op)})
    if random_ops:
        raise parity.ExportError(
            f"the inference graph holds random ops ({', '.join(random_ops)}); "
            "export needs the deterministic path (fire_rate=1)"
        )
    return serve


def write_saved_model(model, path, shape, steps, unroll=False):
    """Writes the SavedModel folder `path` (on the TensorFlow backend)."""
    import keras

    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoint's variables are collected from
    # the traced function, and walking the model's attributes would fail on
    # caches that TensorFlow cannot save (e.g. NCAModel._predict_functions,
    # a dict with int keys, filled by `predict_with_steps`).
    archive.add_endpoint("serve", serving_function(model, shape, steps, unroll))
    archive.write_out(path, verbose=False)
    return {}
