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
from keras import ops

PACKAGE = "hat_ebm_tf"


def _conv(filters, kernel_size, name):
    """A biased conv; 3×3 convs pad SAME, the 1×1 shortcut is VALID."""
    padding = "same" if kernel_size == 3 else "valid"
    return keras.layers.Conv2D(filters, kernel_size, padding=padding, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DownBlock(keras.layers.Layer):
    """SN-GAN discriminator residual block, without spectral normalisation.

    ``h = conv_2(relu(conv_1(relu(x))))``, average-pooled 2×2 when
    ``downsample``. The shortcut is ``x``, passed through a 1×1 conv when the
    channel count changes or the block downsamples, and pooled when it
    downsamples. A ``stem`` block (the first of a network) has no ReLU before
    ``conv_1`` and pools its shortcut *before* the 1×1 conv.

    Args:
        filters: output channels.
        downsample: halve the spatial size with 2×2 average pooling.
        stem: first-block variant described above.

    Call:
        x: ``[B, H, W, C_in]`` float tensor.

    Returns:
        ``[B, H', W', filters]`` with ``H' = H/2`` when downsampling.
    """

    def __init__(self, filters, downsample=False, stem=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.downsample = bool(downsample)
        self.stem = bool(stem)
        self.conv_1 = _conv(self.filters, 3, "conv_1")
        self.conv_2 = _conv(self.filters, 3, "conv_2")
        self.pool = keras.layers.AveragePooling2D(2, name="pool")
        self.sc = None

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels != self.filters or self.downsample:
            self.sc = _conv(self.filters, 1, "sc")
        self.conv_1.build(input_shape)
        self.conv_2.build((*tuple(input_shape[:-1]), self.filters))
        if self.sc is not None:
            self.sc.build(input_shape)

    def call(self, x):
        h = x if self.stem else ops.relu(x)
        h = self.conv_2(ops.relu(self.conv_1(h)))
        if self.downsample:
            h = self.pool(h)
        shortcut = x
        if self.stem and self.downsample:
            shortcut = self.pool(shortcut)
        if self.sc is not None:
            shortcut = self.sc(shortcut)
        if self.downsample and not self.stem:
            shortcut = self.pool(shortcut)
        return h + shortcut

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if self.downsample:
            h = None if h is None else h // 2
            w = None if w is None else w // 2
        return (b, h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, downsample=self.downsample, stem=self.stem)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpBlock(keras.layers.Layer):
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

    def __init__(self, filters, upsample=True, stem=False, **kwargs):
        super().__init__(**kwargs)
        if stem and upsample:
            raise ValueError("UpBlock: a stem block cannot upsample (stem=True, upsample=True)")
        self.filters = int(filters)
        self.upsample = bool(upsample)
        self.stem = bool(stem)
        self.bn_1 = None if stem else keras.layers.BatchNormalization(synchronized=True, name="bn_1")
        self.conv_1 = _conv(self.filters, 3, "conv_1")
        self.bn_2 = keras.layers.BatchNormalization(synchronized=True, name="bn_2")
        self.conv_2 = _conv(self.filters, 3, "conv_2")
        self.up = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up")
        self.sc = None

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels != self.filters or self.upsample:
            self.sc = _conv(self.filters, 1, "sc")
        b, h, w, _ = input_shape
        if self.upsample:
            h, w = (None if h is None else 2 * h), (None if w is None else 2 * w)
        up_shape = (b, h, w, in_channels)
        out_shape = (b, h, w, self.filters)
        if self.bn_1 is not None:
            self.bn_1.build(input_shape)
        self.conv_1.build(up_shape)
        self.bn_2.build(out_shape)
        self.conv_2.build(out_shape)
        if self.sc is not None:
            self.sc.build(up_shape)

    def call(self, x, training=False):
        h = x
        if not self.stem:
            h = ops.relu(self.bn_1(h, training=training))
        if self.upsample:
            h = self.up(h)
        h = ops.relu(self.bn_2(self.conv_1(h), training=training))
        h = self.conv_2(h)
        shortcut = self.up(x) if self.upsample else x
        if self.sc is not None:
            shortcut = self.sc(shortcut)
        return h + shortcut

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if self.upsample:
            h = None if h is None else 2 * h
            w = None if w is None else 2 * w
        return (b, h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, upsample=self.upsample, stem=self.stem)
        return config


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
