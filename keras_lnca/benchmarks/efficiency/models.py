"""The benchmarked models: their names, labels and how each is built (untrained)."""


# name -> (label, how it is built)
MODELS = {
    "lnca_nafca": (
        "LNCA-NAFCA", "kl.LNCA(): NAFCA cell, 4x smaller latent grid, 16 latent + 32 hidden channels"
    ),
    "lnca_vitca": ("LNCA-ViTCA", 'kl.LNCA(cell="vitca"): ViTCA cell on the latent grid'),
    "lnca_conv": (
        "LNCA-Conv",
        'kl.LNCA(cell="conv", autoencoder="space_to_depth"): the shipped presets\' ConvCell '
        "(full 3x3 perception of the whole state to 64 channels, 128-unit MLP; 16 hidden channels)",
    ),
    "pixel_vitca": (
        "ViTCA", 'kl.PixelNCA(cell="vitca"): embed 128, 4 heads, MLP 64, depth 1, hidden 32'
    ),
    "pixel_sobel": (
        "NCA (Sobel)", 'kl.PixelNCA(cell="sobel"): Sobel perception, 128-unit MLP, hidden 32'
    ),
}
BASELINE = "pixel_vitca"
LNCA_MODELS = ("lnca_nafca", "lnca_vitca", "lnca_conv")


def build_model(name, channels=3, steps=64, train_steps=(8, 32), seed=0, jax_cache_dir=None):
    """Builds one of the benchmark's models with untrained weights.

    Args:
        name: a key of `MODELS`.
        channels: int, image channels.
        steps: int, NCA steps at inference.
        train_steps: `(low, high)` NCA steps in training.
        seed: int, seed of the model's training schedule.
        jax_cache_dir: optional folder for JAX's persistent compilation
            cache, enabled only while the weights are created: on JAX every
            weight initializer compiles once per shape (about a second
            each), which a cache shared by the benchmark's subprocesses
            pays only once. Nothing that is measured is cached.

    Returns:
        A built `LNCA` or `PixelNCA`.

    Example:
    ```python
    model = build_model("lnca_nafca", steps=64)
    ```
    """
    from keras_lnca.models import LNCA
    from keras_lnca.models import PixelNCA
    from keras_lnca.benchmarks.efficiency.compiled import jax_compilation_cache

    common = dict(channels=channels, inference_steps=steps, train_steps=train_steps, seed=seed)
    if name == "lnca_nafca":
        model = LNCA(**common)
    elif name == "lnca_vitca":
        model = LNCA(cell="vitca", **common)
    elif name == "lnca_conv":
        model = LNCA(
            cell="conv", autoencoder="space_to_depth", out_seed="input", hidden_channels=16,
            cell_config=dict(perception_channels=64, hidden_units=128), **common,
        )
    elif name == "pixel_vitca":
        # The ViTCA paper's configuration, spelled out.
        vitca = dict(embed_dim=128, heads=4, mlp_dim=64, depth=1)
        model = PixelNCA(cell="vitca", hidden_channels=32, cell_config=vitca, **common)
    elif name == "pixel_sobel":
        model = PixelNCA(cell="sobel", hidden_channels=32, **common)
    else:
        raise ValueError(f"Unknown benchmark model {name!r}; choose from {sorted(MODELS)}.")
    with jax_compilation_cache(jax_cache_dir):
        model.build()
    return model
