"""Parameters and analytic FLOPs of the benchmarked models (the algorithm's count, any backend)."""


def count_params(model):
    """Scalars in the network's weights (the sample pool excluded).

    Args:
        model: an `LNCA` or `PixelNCA`.

    Returns:
        int.
    """
    return int(sum(layer.count_params() for layer in model.layers))


# Operations per element of a BatchNorm at inference: a folded scale and shift.
# (The cells' own costs, layer norms included, are in `NCACell.flops_per_cell`.)
_BATCH_NORM = 2


def _activation_cost(activation):
    # By name: `keras.activations.serialize` would import TensorFlow.
    from keras_lnca.layers.flops import activation_cost

    name = activation if isinstance(activation, str) else getattr(activation, "__name__", None)
    return activation_cost(name)


def _conv_flops(layer, height, width):
    """`(flops, out_height, out_width)` of a Conv2D / Conv2DTranspose ("same" padding)."""
    import keras

    kh, kw = (int(d) for d in layer.kernel.shape[:2])
    stride = int(layer.strides[0])
    if isinstance(layer, keras.layers.Conv2DTranspose):
        cout, cin = (int(d) for d in layer.kernel.shape[2:])
        out_h, out_w = height * stride, width * stride
        # Every input position scatters a kh x kw x cout patch.
        macs = height * width * kh * kw * cin * cout
    else:
        cin, cout = (int(d) for d in layer.kernel.shape[2:])
        out_h, out_w = -(-height // stride), -(-width // stride)
        macs = out_h * out_w * kh * kw * cin * cout
    elementwise = cout * (int(layer.use_bias) + _activation_cost(layer.activation))
    return 2 * macs + out_h * out_w * elementwise, out_h, out_w


def _adj_conv_flops(block, height, width):
    """`(flops, out_height, out_width)` of an `AdjConv` / `AdjConvTranspose`."""
    flops, out_h, out_w = _conv_flops(block.conv, height, width)
    per_element = _activation_cost(block.activation) + (_BATCH_NORM if block.norm is not None else 0)
    return flops + out_h * out_w * block.filters * per_element, out_h, out_w


def count_flops(model, height, width, steps=None, batch=1):
    """Analytic FLOPs of the full inference pipeline.

    Rules: a multiply-add of a Dense or convolution layer is 2 FLOPs (a
    transposed convolution scatters each input position through its kernel);
    a bias add, residual add, gate product or scale is 1 per element; a
    LayerNorm is 7 per element, an inference BatchNorm 2 (folded scale and
    shift), swish 4, sigmoid 3, GELU 5, ReLU 1, a softmax 4 per logit.
    ViTCA's 3x3 local attention costs `2*E` per neighbour for the logits and
    `2*E` for the weighted values (the mathematical dot products, whatever
    matrix trick implements them). Padding, concatenation, slicing and the
    seed state are free; the final clip costs 2 per output element. An LNCA
    input is counted at its padded size (a multiple of `2**downsampling`).

    Args:
        model: a built `LNCA` or `PixelNCA`.
        height: int, input height in pixels.
        width: int, input width in pixels.
        steps: int, NCA steps (defaults to `model.inference_steps`).
        batch: int, images.

    Returns:
        A dict with `flops` (total), `nca` (all steps), `codec`
        (encoder + decoder + clip) and `per_cell_step`, all for the batch.

    Example:
    ```python
    model = build_model("lnca_nafca")
    count_flops(model, 256, 256)["flops"]  # FLOPs per 256x256 image
    ```
    """
    steps = model.inference_steps if steps is None else int(steps)
    factor = model.grid_factor
    padded_h, padded_w = -(-height // factor) * factor, -(-width // factor) * factor
    grid_h, grid_w = padded_h // factor, padded_w // factor
    per_cell = int(model.nca.cell.flops_per_cell())  # each cell reports its own cost
    nca = steps * grid_h * grid_w * per_cell
    codec = 2 * height * width * model.channels  # clip
    encoder = getattr(model, "encoder", None)
    if encoder is not None and getattr(model, "autoencoder", "learned") == "learned":
        # (A space-to-depth codec only moves pixels: no FLOPs.)
        h, w = padded_h, padded_w
        for chain in (encoder.main_blocks, encoder.pass_blocks):
            h, w = padded_h, padded_w
            for block in chain:
                flops, h, w = _adj_conv_flops(block, h, w)
                codec += flops
        codec += h * w * int(encoder.main_blocks[-1].filters)  # main + pass
        codec += _adj_conv_flops(encoder.latent_block, h, w)[0]
        decoder = model.decoder
        h, w = grid_h, grid_w
        for block in decoder.up_blocks:
            flops, h, w = _adj_conv_flops(block, h, w)
            codec += flops
        codec += h * w * int(decoder.mix_block.filters)  # + skip
        flops, h, w = _adj_conv_flops(decoder.mix_block, h, w)
        codec += flops
        codec += _adj_conv_flops(decoder.output_block, h, w)[0]
    return {
        "flops": int(batch * (nca + codec)),
        "nca": int(batch * nca),
        "codec": int(batch * codec),
        "per_cell_step": int(per_cell),
    }
