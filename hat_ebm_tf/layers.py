# Residual blocks of the Hat EBM networks.
#
# The layouts follow the Hat EBM reference implementation (Hill et al., NeurIPS
# 2022, github.com/point0bar1/hat-ebm), whose networks derive from the SN-GAN
# architecture of Miyato et al. (2018) as released under the MIT licence. This
# file is an independent Keras 3 implementation of those layouts; sub-layer
# names ("conv_1", "conv_2", "sc", "bn_1", "bn_2") match the reference's
# checkpoint keys so that its weights can be loaded (see hat_ebm_tf.reference).
"""Residual down-sampling (hat/encoder) and up-sampling (generator) blocks."""

import keras
import tensorflow as tf
from keras import ops

PACKAGE = "hat_ebm_tf"
# Input channel counts (images have 1 or 3) up to which a conv's input
# gradient is computed as a matmul (see _image_conv).
FEW_CHANNELS = 4


def conv_layer(filters, kernel_size, name, dtype):
    """A biased conv under dtype policy ``dtype``; 3×3 convs pad SAME, the 1×1 shortcut is VALID."""
    padding = "same" if kernel_size == 3 else "valid"
    return keras.layers.Conv2D(filters, kernel_size, padding=padding, name=name, dtype=dtype)


def batch_norm_layer(name, dtype):
    """Synchronised batch norm under dtype policy ``dtype`` (see ``UpBlock``)."""
    return keras.layers.BatchNormalization(synchronized=True, name=name, dtype=dtype)


def _conv_then_moving_bn(conv, bn, h):
    """``bn(conv(h))`` with ``bn`` on its moving statistics, run as one conv.

    With moving statistics, batch norm is the per-channel affine map
    ``y·s + β − μ·s``, ``s = γ/√(σ² + ε)``, so it folds into the conv before
    it: kernel ``K·s`` and bias ``(b − μ)·s + β``, derived from the stored
    variables at every call (the checkpoint layout is unchanged). This drops
    the normalisation's full-size elementwise ops from the forward pass and
    from the backward pass of the joint sampler, and leaves conv → bias →
    ReLU, which grappler fuses into one kernel.

    Args:
        conv: a built 3×3 ``Conv2D`` with ``padding="same"``.
        bn: a built ``BatchNormalization`` over ``conv``'s output channels.
        h: ``[B, H, W, C_in]``.

    Returns:
        ``[B, H, W, filters]``, in ``h``'s dtype.
    """
    scale = bn.gamma * ops.rsqrt(bn.moving_variance + bn.epsilon)
    kernel = ops.cast(conv.kernel * scale, h.dtype)
    bias = ops.cast((conv.bias - bn.moving_mean) * scale + bn.beta, h.dtype)
    return tf.nn.bias_add(tf.nn.conv2d(h, kernel, strides=1, padding="SAME"), bias)


def _residual_conv(conv, h, pooled):
    """``conv(h)`` without its bias, average-pooled 2×2 when ``pooled``.

    Pooling a 3×3 SAME conv's output is one 4×4 stride-2 conv: both are
    linear, so it equals convolving at stride 2 with the 4×4 kernel that
    averages the four shifted copies of the 3×3 kernel, and TF's "SAME"
    padding of a 4×4 stride-2 conv over an even size pads 1 on each side,
    which gives the same borders. It does 4/9 of the multiply-adds and skips
    the pool and its gradient.

    Args:
        conv: a built 3×3 ``Conv2D`` with ``padding="same"``.
        h: ``[B, H, W, C_in]``, even ``H`` and ``W`` when ``pooled``.
        pooled: fold a 2×2 average pool into the conv.

    Returns:
        ``[B, H', W', filters]``, ``H' = H/2`` when ``pooled``.
    """
    kernel = ops.cast(conv.kernel, h.dtype)
    if not pooled:
        return tf.nn.conv2d(h, kernel, strides=1, padding="SAME")
    shifts = [(a, c) for a in (0, 1) for c in (0, 1)]
    folded = tf.add_n([tf.pad(kernel, [[a, 1 - a], [c, 1 - c], [0, 0], [0, 0]]) for a, c in shifts]) / 4.0
    return tf.nn.conv2d(h, folded, strides=2, padding="SAME")


@tf.custom_gradient
def _image_conv(x, kernel):
    """3×3 SAME conv of a few-channel image, with a matmul input gradient.

    The Langevin sampler differentiates the energy with respect to the image.
    oneDNN's backward-data kernel for a conv with 1–4 input channels is bound
    by layout conversion, not arithmetic (2–3× the time of the forward conv,
    and as slow with 16 channels as with 3); here the input gradient is one
    ``[BHW, C_out] × [C_out, 9C]`` matmul and a 9-term col2im.

    Args:
        x: ``[B, H, W, C]`` images, small ``C``.
        kernel: ``[3, 3, C, C_out]``.

    Returns:
        ``[B, H, W, C_out]`` (no bias).
    """
    out = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")

    def grad(g):
        channels, filters = kernel.shape[2], kernel.shape[3]
        # cols[b, p, i, j, c] = Σ_o g[b, p, o]·kernel[i, j, c, o]: what output
        # pixel p sends back to input pixel p + (i − 1, j − 1).
        cols = tf.matmul(tf.reshape(g, [-1, filters]), tf.reshape(kernel, [-1, filters]), transpose_b=True)
        cols = tf.reshape(cols, tf.concat([tf.shape(x)[:3], [3, 3, channels]], axis=0))
        taps = [(i, j) for i in range(3) for j in range(3)]
        padded = tf.add_n([tf.pad(cols[:, :, :, i, j], [[0, 0], [i, 2 - i], [j, 2 - j], [0, 0]]) for i, j in taps])
        grad_kernel = tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(kernel), out_backprop=g, strides=[1, 1, 1, 1], padding="SAME"
        )
        return padded[:, 1:-1, 1:-1], grad_kernel

    return out, grad


def _first_conv(conv, x):
    """``conv(x)`` for a 3×3 SAME conv; few-channel inputs go through ``_image_conv``."""
    if x.shape[-1] > FEW_CHANNELS:
        return conv(x)
    return tf.nn.bias_add(_image_conv(x, ops.cast(conv.kernel, x.dtype)), ops.cast(conv.bias, x.dtype))


class _ResampleBlock(keras.layers.Layer):
    """What ``DownBlock`` and ``UpBlock`` share: ``filters``, ``stem`` and a resampling flag, their shapes and config.

    A subclass names its flag (the attribute, constructor argument and config key) in ``RESAMPLE`` and maps a
    resampled side in ``_resized``.

    Args:
        filters: output channels.
        resample: the subclass's resampling flag.
        stem: the subclass's first-block variant.
    """

    RESAMPLE = None

    def __init__(self, filters, resample, stem, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        setattr(self, self.RESAMPLE, bool(resample))
        self.stem = bool(stem)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if getattr(self, self.RESAMPLE):
            h, w = (None if side is None else self._resized(side) for side in (h, w))
        return (b, h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, self.RESAMPLE: getattr(self, self.RESAMPLE), "stem": self.stem})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class DownBlock(_ResampleBlock):
    """SN-GAN discriminator residual block, without spectral normalisation.

    ``h = conv_2(relu(conv_1(relu(x))))``, average-pooled 2×2 when
    ``downsample``. The shortcut is ``x``, passed through a 1×1 conv when the
    channel count changes or the block downsamples, and pooled when it
    downsamples. A ``stem`` block (the first of a network) has no ReLU before
    ``conv_1``. The pooled ``conv_2`` runs as one strided conv
    (``_residual_conv``); same function, fewer operations.

    Args:
        filters: output channels.
        downsample: halve the spatial size with 2×2 average pooling.
        stem: first-block variant described above.

    Call:
        x: ``[B, H, W, C_in]`` float tensor.

    Returns:
        ``[B, H', W', filters]`` with ``H' = H/2`` when downsampling.
    """

    RESAMPLE = "downsample"

    def __init__(self, filters, downsample=False, stem=False, **kwargs):
        super().__init__(filters, downsample, stem, **kwargs)
        # Sub-layers take this block's policy: a mixed block computes its convs in reduced precision too.
        self.conv_1 = conv_layer(self.filters, 3, "conv_1", self.dtype_policy)
        self.conv_2 = conv_layer(self.filters, 3, "conv_2", self.dtype_policy)
        self.pool = keras.layers.AveragePooling2D(2, name="pool", dtype=self.dtype_policy)
        self.sc = None

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels != self.filters or self.downsample:
            self.sc = conv_layer(self.filters, 1, "sc", self.dtype_policy)
        self.conv_1.build(input_shape)
        self.conv_2.build((*tuple(input_shape[:-1]), self.filters))
        if self.sc is not None:
            self.sc.build(input_shape)

    def call(self, x):
        h = x if self.stem else ops.relu(x)
        h = ops.relu(_first_conv(self.conv_1, h))
        h = _residual_conv(self.conv_2, h, pooled=self.downsample)
        # The reference pools the stem's input before its 1×1 shortcut conv and
        # other blocks' output after it; both are linear, so they commute, and
        # pooling first does the 1×1 conv on a quarter of the pixels.
        shortcut = self.pool(x) if self.downsample else x
        if self.sc is not None:
            shortcut = self.sc(shortcut)
        # conv_2's bias joins the shortcut rather than the conv: TF's grappler
        # remapper fails on conv → bias → add → relu when the add has a second
        # consumer (the next block's shortcut) and then fuses nothing at all
        # ("remapper failed: ... fanout ... exist for missing node ...").
        return h + (shortcut + ops.cast(self.conv_2.bias, h.dtype))

    @staticmethod
    def _resized(side):
        return side // 2


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpBlock(_ResampleBlock):
    """SN-GAN generator residual block with (synchronised) batch norm.

    ``h = conv_2(relu(bn_2(conv_1(up(relu(bn_1(x)))))))``, where ``up`` is 2×
    bilinear upsampling when ``upsample``. The shortcut is ``up(x)``, passed
    through a 1×1 conv when the channel count changes or the block upsamples.
    A ``stem`` block (the retrofit decoder's first) has no ``bn_1``/ReLU before
    ``conv_1`` and never upsamples.

    Batch norm is ``BatchNormalization(synchronized=True)``, the Keras 3
    replacement of tensorflow-addons' ``SyncBatchNormalization`` that the
    reference used: under a ``tf.distribute`` strategy its batch statistics
    are reduced across replicas.

    Args:
        filters: output channels.
        upsample: double the spatial size (bilinear).
        stem: first-block variant described above.

    Call:
        x: ``[B, H, W, C_in]`` float tensor.
        training: batch statistics (True) or moving statistics (False). The
            reference always uses ``False``.

    Returns:
        ``[B, H', W', filters]`` with ``H' = 2H`` when upsampling.
    """

    RESAMPLE = "upsample"

    def __init__(self, filters, upsample=True, stem=False, **kwargs):
        super().__init__(filters, upsample, stem, **kwargs)
        if stem and upsample:
            raise ValueError("UpBlock: a stem block cannot upsample (stem=True, upsample=True)")
        policy = self.dtype_policy
        self.bn_1 = None if stem else batch_norm_layer("bn_1", policy)
        self.conv_1 = conv_layer(self.filters, 3, "conv_1", policy)
        self.bn_2 = batch_norm_layer("bn_2", policy)
        self.conv_2 = conv_layer(self.filters, 3, "conv_2", policy)
        self.up = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up", dtype=policy)
        self.sc = None

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels != self.filters or self.upsample:
            self.sc = conv_layer(self.filters, 1, "sc", self.dtype_policy)
        out_shape = self.compute_output_shape(input_shape)
        up_shape = (*out_shape[:-1], in_channels)
        if self.bn_1 is not None:
            self.bn_1.build(input_shape)
        self.conv_1.build(up_shape)
        self.bn_2.build(out_shape)
        self.conv_2.build(out_shape)
        if self.sc is not None:
            self.sc.build(input_shape)

    def call(self, x, training=False):
        h = x
        if not self.stem:
            h = ops.relu(self.bn_1(h, training=training))
        if self.upsample:
            h = self.up(h)
        if training and self.bn_2.trainable:
            h = self.bn_2(self.conv_1(h), training=True)
        else:
            # Moving statistics, as the sampler, `generate` and the export use: one conv.
            h = _conv_then_moving_bn(self.conv_1, self.bn_2, h)
        h = self.conv_2(ops.relu(h))
        # The reference upsamples x before the 1×1 shortcut conv. Both are
        # linear and bilinear weights sum to 1 (so the bias commutes too):
        # the conv runs first, on a quarter of the pixels.
        shortcut = x if self.sc is None else self.sc(x)
        if self.upsample:
            shortcut = self.up(shortcut)
        return h + shortcut

    @staticmethod
    def _resized(side):
        return 2 * side


@keras.saving.register_keras_serializable(package=PACKAGE)
class SphereProjection(keras.layers.Layer):
    """Project each sample onto the sphere of radius sqrt(D).

    ``z * sqrt(D) / (||z|| + 1e-6)`` with ``D`` the number of latent entries
    per sample: the retrofit encoder's latent normalisation.

    Call:
        z: ``[B, ...]`` float tensor.

    Returns:
        Same shape; each sample has L2 norm ``sqrt(D)`` (up to the 1e-6).
    """

    def call(self, z):
        flat = ops.reshape(z, (ops.shape(z)[0], -1))
        dim = ops.cast(ops.shape(flat)[1], z.dtype)
        norm = ops.sqrt(ops.sum(ops.square(flat), axis=1))
        scale = ops.sqrt(dim) / (norm + 1e-6)
        return z * ops.reshape(scale, (-1,) + (1,) * (len(z.shape) - 1))
