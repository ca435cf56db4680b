import math

import keras
import numpy as np
from keras import ops

from keras_lnca.layers.flops import dense_flops
from keras_lnca.layers.flops import LAYER_NORM_COST
from keras_lnca.layers.flops import SOFTMAX_COST
from keras_lnca.layers.nca_cell import NCACell


def _neighbours(x):
    """The 3x3 neighbourhood of every cell, zero outside the grid: 9 tensors."""
    height, width = ops.shape(x)[1], ops.shape(x)[2]
    padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return [
        padded[:, i : i + height, j : j + width, :] for i in range(3) for j in range(3)
    ]


@keras.saving.register_keras_serializable(package="keras_lnca")
class ViTCACell(NCACell):
    """Vision Transformer cell (ViTCA): localised self-attention over 3×3.

    Each cell is embedded (linear, plus a 2-D sinusoidal positional
    encoding), then `depth` pre-norm transformer blocks run multi-head
    self-attention in which a cell attends only to its 3×3 neighbourhood
    (zero cells outside the grid), followed by an MLP; a zero-initialised
    linear head (after LayerNorm) gives the update of out + hidden channels.

    Per-head dot products are computed with a fixed channel→head summing
    matrix, so the layer needs no reshapes and works on any grid size.

    Args:
        input_channels: int, fixed leading channels.
        embed_dim: int, token width. Defaults to 128.
        heads: int, attention heads. Defaults to 4.
        mlp_dim: int, hidden width of the MLP. Defaults to 64.
        depth: int, transformer blocks. Defaults to 1.
        positional_encoding: bool, add the 2-D sinusoidal encoding. It makes
            the rule position-dependent (as in ViTCA); tiled restoration is
            then not exactly equal to untiled.
        dropout: float, dropout in attention and MLP outputs.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    cell = kl.layers.ViTCACell(input_channels=3)
    state = cell(np.zeros((1, 32, 32, 38)))
    ```

    Reference:
        Tesfaldet, Nowrouzezahrai, Pal, "Attention-based Neural Cellular
        Automata", NeurIPS 2022; Menta et al., arXiv:2403.15525.
    """

    # Attention over each cell's neighbourhood holds keys, values and weights
    # per head: more state-sized buffers than a convolution rule.
    memory_factor = 24

    def __init__(
        self,
        input_channels,
        embed_dim=128,
        heads=4,
        mlp_dim=64,
        depth=1,
        positional_encoding=True,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(input_channels, **kwargs)
        if embed_dim % heads or embed_dim % 4:
            raise ValueError("`embed_dim` must be divisible by `heads` and by 4.")
        self.embed_dim = embed_dim
        self.heads = heads
        self.mlp_dim = mlp_dim
        self.depth = depth
        self.positional_encoding = positional_encoding
        self.dropout = dropout

    def build_rule(self, input_shape):
        shape = tuple(input_shape)
        token_shape = shape[:-1] + (self.embed_dim,)

        def built(layer, in_shape):
            layer.build(in_shape)
            return layer

        self.embed = built(keras.layers.Dense(self.embed_dim, name="embed"), shape)
        self.blocks = []
        for i in range(self.depth):
            self.blocks.append(
                {
                    "norm_attn": built(
                        keras.layers.LayerNormalization(epsilon=1e-5, name=f"norm_attn_{i}"),
                        token_shape,
                    ),
                    "qkv": built(
                        keras.layers.Dense(3 * self.embed_dim, use_bias=False, name=f"qkv_{i}"),
                        token_shape,
                    ),
                    "attn_out": built(
                        keras.layers.Dense(self.embed_dim, name=f"attn_out_{i}"), token_shape
                    ),
                    "norm_mlp": built(
                        keras.layers.LayerNormalization(epsilon=1e-5, name=f"norm_mlp_{i}"),
                        token_shape,
                    ),
                    "mlp_in": built(
                        keras.layers.Dense(self.mlp_dim, activation="gelu", name=f"mlp_in_{i}"),
                        token_shape,
                    ),
                    "mlp_out": built(
                        keras.layers.Dense(self.embed_dim, name=f"mlp_out_{i}"),
                        shape[:-1] + (self.mlp_dim,),
                    ),
                }
            )
        self.norm_head = built(
            keras.layers.LayerNormalization(epsilon=1e-5, name="norm_head"), token_shape
        )
        self.head = built(
            keras.layers.Dense(
                self.update_channels,
                kernel_initializer="zeros",
                bias_initializer="zeros",
                name="head",
            ),
            token_shape,
        )
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        head_dim = self.embed_dim // self.heads
        # head_sum[d, h] = 1 when channel d belongs to head h.
        self._head_sum = np.kron(np.eye(self.heads), np.ones((head_dim, 1))).astype("float32")

    def _positions(self, height, width, dtype):
        quarter = self.embed_dim // 4
        freqs = ops.exp(
            ops.arange(quarter, dtype="float32") * (-math.log(10000.0) / quarter)
        )
        ys = ops.cast(ops.arange(height), "float32")[:, None] * freqs
        xs = ops.cast(ops.arange(width), "float32")[:, None] * freqs
        y_enc = ops.concatenate([ops.sin(ys), ops.cos(ys)], axis=-1)  # (H, E/2)
        x_enc = ops.concatenate([ops.sin(xs), ops.cos(xs)], axis=-1)  # (W, E/2)
        y_enc = ops.broadcast_to(y_enc[:, None, :], (height, width, 2 * quarter))
        x_enc = ops.broadcast_to(x_enc[None, :, :], (height, width, 2 * quarter))
        return ops.cast(ops.concatenate([y_enc, x_enc], axis=-1)[None], dtype)

    def _dropout(self, x, training):
        return self.drop(x, training=training) if self.drop is not None else x

    def _local_attention(self, block, x, training):
        q, k, v = ops.split(block["qkv"](x), 3, axis=-1)
        head_sum = ops.cast(ops.convert_to_tensor(self._head_sum), x.dtype)
        scale = (self.embed_dim // self.heads) ** -0.5
        keys, values = _neighbours(k), _neighbours(v)
        logits = ops.stack([ops.matmul(q * k_n, head_sum) * scale for k_n in keys], axis=3)
        weights = ops.softmax(logits, axis=3)  # (B, H, W, 9, heads)
        out = 0.0
        for n, v_n in enumerate(values):
            out = out + ops.matmul(weights[:, :, :, n, :], ops.transpose(head_sum)) * v_n
        return self._dropout(block["attn_out"](out), training)

    def perceive(self, state, training=None):
        """The transformer: embedded cells attend to their 3x3 neighbours, block by block."""
        x = self.embed(state)
        if self.positional_encoding:
            x = x + self._positions(ops.shape(state)[1], ops.shape(state)[2], x.dtype)
        for block in self.blocks:
            x = x + self._local_attention(block, block["norm_attn"](x), training)
            x = x + self._dropout(block["mlp_out"](block["mlp_in"](block["norm_mlp"](x))), training)
        return x

    def update(self, perception, training=None):
        """The per-cell head: normalised features to the update."""
        return self.head(self.norm_head(perception))

    def flops_per_cell(self):
        embed, heads, neighbours = self.embed_dim, self.heads, 9
        total = dense_flops(self.embed) + (embed if self.positional_encoding else 0)
        for block in self.blocks:
            total += (
                LAYER_NORM_COST * embed
                + dense_flops(block["qkv"])
                + neighbours * 2 * embed  # q . k per head (E multiply-adds per neighbour)
                + neighbours * heads * (1 + SOFTMAX_COST)  # scale, softmax over the 9 neighbours
                + neighbours * 2 * embed  # weighted sum of the values
                + dense_flops(block["attn_out"])
                + embed  # residual
                + LAYER_NORM_COST * embed
                + dense_flops(block["mlp_in"])
                + dense_flops(block["mlp_out"])
                + embed  # residual
            )
        return total + LAYER_NORM_COST * embed + dense_flops(self.head) + self.update_channels

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "heads": self.heads,
                "mlp_dim": self.mlp_dim,
                "depth": self.depth,
                "positional_encoding": self.positional_encoding,
                "dropout": self.dropout,
            }
        )
        return config
