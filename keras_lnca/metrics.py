"""Image-quality metrics: PSNR and SSIM, per image, then averaged.

Both metrics are written with `keras.ops` only, so they run inside a compiled
train/test step on every backend (TensorFlow with or without XLA, JAX, and
PyTorch). Inputs are batches of NHWC images (`(batch, height, width,
channels)`); a rank-3 input is taken as one `(height, width, channels)` image.

Unlike `keras.ops.psnr`, which pools the squared error over the whole batch,
these metrics compute one value per image and average the values, which is how
restoration papers report PSNR/SSIM over a test set. With the defaults they
agree with `skimage.metrics.peak_signal_noise_ratio(data_range=1)` and
`skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`.

Values are measured on the inputs as given: predictions are not clipped or
quantised to `[0, max_val]` first. Clip (and round, to reproduce 8-bit
evaluation) before calling the metric if that is the protocol you want.
"""

import keras
from keras import ops

# ITU-R BT.601 luma for inputs on [0, 1] (MATLAB `rgb2ycbcr`, the convention
# of restoration benchmarks): Y = (65.481 R + 128.553 G + 24.966 B + 16) / 255.
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET = 16.0 / 255.0

# Added to the per-image MSE (scaled by max_val**2) so identical images give
# a finite PSNR: 10 * log10(1 / 1e-10) = 100 dB at most.
_MSE_EPSILON = 1e-10


class _ImageQualityMetric(keras.metrics.Metric):
    """Shared state and preprocessing of `PSNR` and `SSIM`.

    Subclasses implement `_per_image(y_true, y_pred)`, which gets float32
    NHWC batches (already cropped and converted to Y where asked) and returns
    one value per image.
    """

    def __init__(
        self,
        max_val=1.0,
        crop_border=0,
        y_channel=False,
        name=None,
        dtype=None,
        **kwargs,
    ):
        super().__init__(name=name, dtype=dtype, **kwargs)
        max_val = float(max_val)
        if max_val <= 0:
            raise ValueError(f"`max_val` must be positive. Received: {max_val}")
        crop_border = int(crop_border)
        if crop_border < 0:
            raise ValueError(
                f"`crop_border` must be >= 0. Received: {crop_border}"
            )
        self.max_val = max_val
        self.crop_border = crop_border
        self.y_channel = bool(y_channel)
        self.total = self.add_variable(
            shape=(),
            initializer=keras.initializers.Zeros(),
            dtype=self.dtype,
            name="total",
        )
        self.count = self.add_variable(
            shape=(),
            initializer=keras.initializers.Zeros(),
            dtype=self.dtype,
            name="count",
        )

    def _prepare(self, images):
        images = ops.convert_to_tensor(images)
        if len(images.shape) == 3:
            images = ops.expand_dims(images, axis=0)
        if len(images.shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__} expects NHWC images of rank 4 (or "
                f"one HWC image of rank 3). Received shape: {images.shape}"
            )
        images = ops.cast(images, "float32")
        if self.crop_border:
            c = self.crop_border
            images = images[:, c:-c, c:-c, :]
        if self.y_channel:
            channels = images.shape[-1]
            if channels == 3:
                weights = ops.convert_to_tensor(_Y_WEIGHTS, dtype="float32")
                images = ops.sum(images * weights, axis=-1, keepdims=True)
                images = images + _Y_OFFSET * self.max_val
            elif channels != 1:
                raise ValueError(
                    "`y_channel=True` needs 3 (RGB) or 1 (already luma) "
                    f"channels. Received shape: {images.shape}"
                )
        return images

    def _per_image(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the per-image values of a batch to the running mean.

        Args:
            y_true: reference images, NHWC (or one HWC image).
            y_pred: restored images, same shape as `y_true`.
            sample_weight: optional per-image weights, shape `(batch,)` (or
                any shape whose first axis is the batch; extra axes are
                averaged). The result is then the weighted mean.
        """
        y_true = self._prepare(y_true)
        y_pred = self._prepare(y_pred)
        values = self._per_image(y_true, y_pred)
        if sample_weight is None:
            total = ops.sum(values)
            count = ops.cast(ops.shape(values)[0], "float32")
        else:
            weights = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(weights.shape) > 1:
                weights = ops.reshape(weights, (ops.shape(weights)[0], -1))
                weights = ops.mean(weights, axis=-1)
            weights = ops.broadcast_to(weights, ops.shape(values))
            total = ops.sum(values * weights)
            count = ops.sum(weights)
        self.total.assign_add(ops.cast(total, self.dtype))
        self.count.assign_add(ops.cast(count, self.dtype))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(ops.zeros((), dtype=self.dtype))
        self.count.assign(ops.zeros((), dtype=self.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_val": self.max_val,
                "crop_border": self.crop_border,
                "y_channel": self.y_channel,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_lnca")
class PSNR(_ImageQualityMetric):
    """Peak signal-to-noise ratio in dB, computed per image and averaged.

    For each image, `PSNR = 10 * log10(max_val**2 / (MSE + eps))` where `MSE`
    is the mean squared error over all pixels and channels of that image and
    `eps = 1e-10 * max_val**2`. The `eps` keeps identical images finite
    (100 dB at most) so one perfect image cannot turn the mean into `inf`; it
    changes any realistic value (below ~80 dB) by less than 1e-4 dB.

    Values are measured on the inputs as given (no clipping to
    `[0, max_val]`).

    Args:
        max_val: the dynamic range of the images, `1.0` for float images on
            `[0, 1]`, `255.0` for `[0, 255]`.
        crop_border: pixels removed from each of the four sides before
            measuring (a common protocol for deblurring and super-resolution).
        y_channel: if `True`, RGB images are converted to the ITU-R BT.601
            luma Y (`Y = (65.481 R + 128.553 G + 24.966 B + 16) / 255` on
            `[0, 1]`, i.e. MATLAB `rgb2ycbcr`) and only Y is measured.
            Single-channel images are used as they are.
        name: name of the metric.
        **kwargs: passed to `keras.metrics.Metric` (e.g. `dtype`).

    Example:

    >>> import numpy as np
    >>> clean = np.random.rand(4, 32, 32, 3).astype("float32")
    >>> noisy = clean + np.random.normal(0, 0.1, clean.shape)
    >>> metric = PSNR()
    >>> metric.update_state(clean, noisy)
    >>> float(metric.result())  # about 20 dB
    20.0...

    ```python
    model.compile(optimizer="adam", loss="mse", metrics=[PSNR(), SSIM()])
    ```
    """

    def __init__(
        self,
        max_val=1.0,
        crop_border=0,
        y_channel=False,
        name="psnr",
        **kwargs,
    ):
        super().__init__(
            max_val=max_val,
            crop_border=crop_border,
            y_channel=y_channel,
            name=name,
            **kwargs,
        )

    def _per_image(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
        peak = self.max_val**2
        ratio = peak / (mse + _MSE_EPSILON * peak)
        return 10.0 * ops.log(ratio) / ops.log(10.0)


@keras.saving.register_keras_serializable(package="keras_lnca")
class SSIM(_ImageQualityMetric):
    """Structural similarity, computed per image and averaged.

    Uses `keras.ops.image.ssim`: an 11x11 Gaussian window with sigma 1.5,
    `k1=0.01`, `k2=0.03`, population (not sample) covariances, "valid"
    filtering (no padding), the SSIM map averaged over the image and then
    over channels. This matches `skimage.metrics.structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=max_val, channel_axis=-1)`. Images (after `crop_border`) must
    be at least 11x11.

    Values are measured on the inputs as given (no clipping to
    `[0, max_val]`).

    Args:
        max_val: the dynamic range of the images, `1.0` for float images on
            `[0, 1]`, `255.0` for `[0, 255]`.
        crop_border: pixels removed from each of the four sides before
            measuring.
        y_channel: if `True`, RGB images are converted to the ITU-R BT.601
            luma Y (`Y = (65.481 R + 128.553 G + 24.966 B + 16) / 255` on
            `[0, 1]`) and only Y is measured. Single-channel images are used
            as they are.
        name: name of the metric.
        **kwargs: passed to `keras.metrics.Metric` (e.g. `dtype`).

    Example:

    >>> import numpy as np
    >>> clean = np.random.rand(4, 32, 32, 1).astype("float32")
    >>> metric = SSIM()
    >>> metric.update_state(clean, clean)
    >>> float(metric.result())
    1.0
    """

    def __init__(
        self,
        max_val=1.0,
        crop_border=0,
        y_channel=False,
        name="ssim",
        **kwargs,
    ):
        super().__init__(
            max_val=max_val,
            crop_border=crop_border,
            y_channel=y_channel,
            name=name,
            **kwargs,
        )

    def _per_image(self, y_true, y_pred):
        return ops.image.ssim(
            y_true,
            y_pred,
            max_val=self.max_val,
            data_format="channels_last",
        )
