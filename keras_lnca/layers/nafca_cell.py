import keras
from keras import ops

from keras_lnca.layers.flops import dense_flops
from keras_lnca.layers.flops import LAYER_NORM_COST
from keras_lnca.layers.nca_cell import NCACell


@keras.saving.register_keras_serializable(package="keras_lnca")
class NAFCACell(NCACell):
    """The paper's NAFNet-style cell (NAFCA), the default LNCA rule.

    Perception and update, per cell: LayerNorm → 1×1 conv to `embed_dim` →
    grouped (depthwise) 1×1 conv doubling the channels → SimpleGate → a 3×3
    convolution to one channel used as a spatial gate (the only operation that
    looks at the neighbours) → 1×1 conv back to the state width, added through
    a zero-initialised scale `beta`; then a feed-forward branch (LayerNorm →
    1×1 → SimpleGate → 1×1) added through a zero-initialised `gamma`; finally
    LayerNorm → 1×1 conv to the out + hidden channels.

    The grouped 1×1 convolution (one input channel, two outputs per group) is
    written as a per-channel scale and bias: the same function and parameters
    as `Conv2D(groups=embed_dim)`, without the slow grouped-conv kernels.

    Args:
        input_channels: int, fixed leading channels (latent input).
        embed_dim: int, width of the gated branch. Defaults to 128.
        ffn_expand: int, feed-forward width as a multiple of the state width.
        dropout: float, dropout after each branch (training only).
        head_initializer: initializer of the final 1x1 conv's kernel:
            `"glorot_uniform"` (default, as the official code) or `"zeros"`
            (the untrained rule is then the identity, as in the classic NCA
            and this package's ViTCA and Sobel cells, so that the state does
            not blow up over the first training steps).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    cell = kl.layers.NAFCACell(input_channels=16)
    state = cell(np.zeros((1, 8, 8, 64)))  # one step, same shape
    ```

    Reference:
        Menta, Archetti, Matteucci, arXiv:2403.15525; Chen et al., "Simple
        Baselines for Image Restoration" (NAFNet), ECCV 2022.
    """

    def __init__(
        self,
        input_channels,
        embed_dim=128,
        ffn_expand=4,
        dropout=0.1,
        head_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(input_channels, **kwargs)
        self.embed_dim = embed_dim
        self.ffn_expand = ffn_expand
        self.dropout = dropout
        self.head_initializer = head_initializer

    def build_rule(self, input_shape):
        width = self.state_channels
        shape = tuple(input_shape)

        def norm(name):
            layer = keras.layers.LayerNormalization(epsilon=1e-6, name=name)
            layer.build(shape)
            return layer

        def dense(units, in_shape, name, **kw):
            layer = keras.layers.Dense(units, name=name, **kw)
            layer.build(in_shape)
            return layer

        self.norm1 = norm("norm1")
        self.expand = dense(self.embed_dim, shape, "expand")
        self.group_kernel = self.add_weight(
            shape=(self.embed_dim, 2), initializer="glorot_uniform", name="group_kernel"
        )
        self.group_bias = self.add_weight(
            shape=(self.embed_dim, 2), initializer="zeros", name="group_bias"
        )
        half_shape = shape[:-1] + (self.embed_dim,)
        self.spatial_gate = keras.layers.Conv2D(1, 3, padding="same", name="spatial_gate")
        self.spatial_gate.build(half_shape)
        self.project = dense(width, half_shape, "project")
        self.beta = self.add_weight(shape=(width,), initializer="zeros", name="beta")
        self.norm2 = norm("norm2")
        ffn = width * self.ffn_expand
        self.ffn_in = dense(ffn, shape, "ffn_in")
        self.ffn_out = dense(width, shape[:-1] + (ffn // 2,), "ffn_out")
        self.gamma = self.add_weight(shape=(width,), initializer="zeros", name="gamma")
        self.norm3 = norm("norm3")
        self.head = dense(
            self.update_channels, shape, "head", kernel_initializer=self.head_initializer
        )
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout > 0 else None

    @staticmethod
    def simple_gate(x):
        a, b = ops.split(x, 2, axis=-1)
        return a * b

    def gated_expansion(self, x):
        """Grouped 1x1 conv (groups=embed_dim, 2 outputs each) + SimpleGate.

        SimpleGate multiplies output channel i of the first half by channel i
        of the second half, i.e. group g with group g + embed_dim/2 (same
        output index j). Computed directly, with the outputs in (j, g) order
        rather than the convolution's (g, j): a fixed permutation that the
        following layers absorb.
        """
        half = self.embed_dim // 2
        kernel, bias = self.group_kernel, self.group_bias
        gates = []
        for j in range(2):
            a = x[..., :half] * kernel[:half, j] + bias[:half, j]
            b = x[..., half:] * kernel[half:, j] + bias[half:, j]
            gates.append(a * b)
        return ops.concatenate(gates, axis=-1)

    def _dropout(self, x, training):
        return self.drop(x, training=training) if self.drop is not None else x

    def perceive(self, state, training=None):
        """The NAF block: gated spatial mixing of the neighbourhood, then its
        feed-forward network, each with its scaled residual."""
        x = self.gated_expansion(self.expand(self.norm1(state)))
        x = x * self.spatial_gate(x)
        x = self._dropout(self.project(x), training)
        y = state + x * self.beta
        x = self.ffn_out(self.simple_gate(self.ffn_in(self.norm2(y))))
        return y + self._dropout(x, training) * self.gamma

    def update(self, perception, training=None):
        """The per-cell head: normalised features to the update."""
        return self.head(self.norm3(perception))

    def flops_per_cell(self):
        width, embed = self.state_channels, self.embed_dim
        ffn = int(self.ffn_in.kernel.shape[1])
        return (
            3 * LAYER_NORM_COST * width  # norm1, norm2, norm3
            + dense_flops(self.expand)
            + 5 * embed  # grouped 1x1 conv (scale + bias, 2 outputs each) and its SimpleGate
            + dense_flops(self.spatial_gate)  # 3x3 conv to one channel
            + embed  # x * spatial gate
            + dense_flops(self.project)
            + 2 * width  # y = state + x * beta
            + dense_flops(self.ffn_in)
            + ffn // 2  # SimpleGate
            + dense_flops(self.ffn_out)
            + 2 * width  # y + x * gamma
            + dense_flops(self.head)
            + self.update_channels  # the residual
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "ffn_expand": self.ffn_expand,
                "dropout": self.dropout,
                "head_initializer": self.head_initializer,
            }
        )
        return config
