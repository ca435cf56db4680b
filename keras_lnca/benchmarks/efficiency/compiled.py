"""The efficiency benchmark's compiled inference pass, per backend.

`compiled_forward` compiles the deterministic inference pass as
`Model.predict` compiles it (XLA on JAX, a `tf.function` on TensorFlow,
eager PyTorch); `jax_compilation_cache` keeps JAX's compiled programs on
disk between the benchmark's worker processes. Only the benchmarks use
them: the model package runs on `keras.ops` and `keras_lnca.backend_utils`.
"""

import contextlib

import numpy as np


def compiled_forward(model, steps=None, jit_compile="auto", example=None):
    """The deterministic inference pass, compiled as `Model.predict` compiles it.

    Args:
        model: a built `LNCA` or `PixelNCA`.
        steps: int, NCA steps (defaults to `model.inference_steps`).
        jit_compile: `"auto"`, True or False: XLA for the TensorFlow
            `tf.function` (`"auto"`: only with a GPU, as Keras). JAX always
            compiles with XLA; PyTorch runs eagerly, as `predict` does.
        example: optional numpy array of the input shape: compile (JAX) or
            trace (TensorFlow) for it now rather than at the first call.

    Returns:
        `(forward, jit)`: `forward(images) -> numpy array`, images a numpy
        array `(batch, height, width, channels)`; `jit` whether XLA is used.

    Example:
    ```python
    forward, _ = compiled_forward(model, steps=64)
    restored = forward(np.zeros((1, 64, 64, 3), "float32"))
    ```
    """
    import keras

    steps = model.inference_steps if steps is None else int(steps)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def restore(trainable, non_trainable, images):
            restored, _ = model.stateless_call(
                trainable, non_trainable, images, training=False, steps=steps
            )
            return restored

        run = jax.jit(restore)
        if example is not None:
            run = run.lower(trainable, non_trainable, example).compile()
        return (lambda images: np.asarray(run(trainable, non_trainable, images))), True
    if backend == "tensorflow":
        import tensorflow as tf

        # "auto" follows Keras: XLA only with a GPU.
        jit = bool(tf.config.list_logical_devices("GPU")) if jit_compile == "auto" else bool(jit_compile)
        run = tf.function(
            lambda images: model(images, training=False, steps=steps),
            jit_compile=jit,
            reduce_retracing=True,
        )
        if example is not None:
            run = run.get_concrete_function(tf.TensorSpec(example.shape, tf.float32))
        return (lambda images: run(tf.convert_to_tensor(images)).numpy()), jit
    if backend == "torch":
        import torch

        def forward(images):
            with torch.no_grad():
                restored = model(keras.ops.convert_to_tensor(images), training=False, steps=steps)
            return keras.ops.convert_to_numpy(restored)

        return forward, False
    raise ValueError(f"Unsupported backend {backend!r}.")


@contextlib.contextmanager
def jax_compilation_cache(directory):
    """Enables JAX's persistent compilation cache in `directory` for a block."""
    import keras

    if not directory or keras.backend.backend() != "jax":
        yield
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_enable_compilation_cache", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", False)
