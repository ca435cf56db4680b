"""FLOP counting for the cells' `flops_per_cell` (the efficiency benchmark reads it).

Counted analytically: a multiply-add is 2 FLOPs; biases, activations,
normalisations and gates are counted per element with the costs below.
"""

# FLOPs per element of a layer normalisation: mean, centre, square + sum, scale, affine.
LAYER_NORM_COST = 7
SOFTMAX_COST = 4  # max-subtract, exp, sum, divide

# FLOPs per element of the activations the cells use (for `flops_per_cell`).
ACTIVATION_COSTS = {None: 0, "linear": 0, "relu": 1, "sigmoid": 3, "swish": 4, "silu": 4, "gelu": 5}


def activation_cost(activation):
    """FLOPs per element of an activation given by name."""
    try:
        return ACTIVATION_COSTS[activation]
    except KeyError:
        raise ValueError(f"No FLOP cost for activation {activation!r}.") from None


def dense_flops(layer):
    """FLOPs of a Dense layer (or a 1x1 convolution) at one position."""
    fan_in, units = (int(d) for d in layer.kernel.shape[-2:])
    kernel_taps = 1
    for d in layer.kernel.shape[:-2]:
        kernel_taps *= int(d)
    bias = units if layer.use_bias else 0
    name = getattr(layer.activation, "__name__", layer.activation)
    return 2 * kernel_taps * fan_in * units + bias + activation_cost(name) * units
