# Hat (energy) network, SN-GAN generator and the retrofit autoencoder.
#
# Layouts follow the Hat EBM reference implementation (Hill et al., NeurIPS
# 2022, github.com/point0bar1/hat-ebm); the hat network and generator are the
# SN-GAN discriminator/generator of Miyato et al. (2018, MIT licence) with
# spectral normalisation removed. Independent Keras 3 implementation. Each
# family is built from one width table (hat_ebm_tf.choices); sub-layer names
# match the reference's checkpoint keys ("conv_1", "block2", ..., "lin_5").
"""Table-driven Keras networks of Hat EBM. Images are NHWC in [-1, 1]."""

import math

import keras
from keras import ops

from hat_ebm_tf.choices import GENERATOR_TABLE, HAT_TABLE
from hat_ebm_tf.layers import PACKAGE, DownBlock, SphereProjection, UpBlock, batch_norm_layer, conv_layer

# Retrofit decoder/encoder (32×32 images, latent [16, 16, 1]): (width divisor,
# resample) per block; the first entry is the stem.
DECODER_BLOCKS = ((1, False), (1, True), (1, False), (1, False))
ENCODER_BLOCKS = ((1, False), (1, True), (1, False), (1, False))
BOTTOM_WIDTH = 4


def _check_size(image_size, table, family):
    if image_size not in table:
        raise ValueError(f"{family}: unsupported image_size={image_size!r}; supported sizes are {sorted(table)}")


def _check_width(width, divisors, family):
    largest = max(divisors)
    if not isinstance(width, int) or width <= 0 or width % largest:
        raise ValueError(f"{family}: width={width!r} must be a positive multiple of {largest}")


def _check_positive(name, value, family):
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{family}: {name}={value!r} must be a positive integer")


def _tail_layers(n, channels, policy):
    """The generator tail's ``(bn_n, conv_n)`` under dtype policy ``policy``: the blocks' own batch norm and conv."""
    return batch_norm_layer(f"bn_{n}", policy), conv_layer(channels, 3, f"conv_{n}", policy)


def _up_and_tail(blocks, bn, conv, h, out_factor, training):
    """The up-blocks in turn, then the generator output head: bn → relu → conv3×3 → tanh → × out_factor."""
    for block in blocks:
        h = block(h, training=training)
    return ops.tanh(conv(ops.relu(bn(h, training=training)))) * out_factor


def _build_chain(layers, shape):
    """Build ``layers`` in sequence from ``shape``; return the output shape."""
    shape = tuple(shape)
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class HatNetwork(keras.Model):
    """The hat (energy) network H: an SN-GAN discriminator without spectral norm.

    Args:
        image_size: 16, 32, 64 or 128.
        width: the reference's ``ngf`` (32×32 default 256; 64/128 default 1024).
            At 64/128 it must be a multiple of 16.
        channels: image channels.

    Call:
        images: ``[B, image_size, image_size, channels]`` in [-1, 1].

    Returns:
        ``[B, 1]`` energies (lower is more likely).
    """

    def __init__(self, image_size=32, width=256, channels=3, **kwargs):
        super().__init__(**kwargs)
        _check_size(image_size, HAT_TABLE, "HatNetwork")
        table = HAT_TABLE[image_size]
        _check_width(width, [d for d, _ in table], "HatNetwork")
        _check_positive("channels", channels, "HatNetwork")
        self.image_size, self.width, self.channels = image_size, width, channels
        # Every layer takes this model's policy (``dtype=``), except the head:
        # the energies stay float32, as the sampler sums them into its gradient.
        policy = self.dtype_policy
        self.blocks = [
            DownBlock(
                width // div,
                downsample=down,
                stem=(i == 0),
                name="conv_1" if i == 0 else f"block{i + 1}",
                dtype=policy,
            )
            for i, (div, down) in enumerate(table)
        ]
        self.head = keras.layers.Dense(1, use_bias=False, name=f"lin_{len(table) + 1}", dtype="float32")
        self.build((None, image_size, image_size, channels))

    def build(self, input_shape):
        shape = _build_chain(self.blocks, input_shape)
        self.head.build((None, shape[-1]))
        self.built = True

    def call(self, images):
        h = images
        for block in self.blocks:
            h = block(h)
        h = ops.mean(ops.relu(ops.cast(h, "float32")), axis=(1, 2))
        return self.head(h)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "width": self.width,
            "channels": self.channels,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class Generator(keras.Model):
    """SN-GAN generator G with synchronised batch norm.

    ``Dense(16·width)`` → reshape to ``[B, width, 4, 4]`` (channels first, as
    the reference) → NHWC → up-blocks → bn → relu → conv → tanh → × out_factor.

    Args:
        image_size: 16, 32, 64 or 128.
        width: the reference's ``ngf``; a multiple of 16 at 64/128.
        channels: image channels.
        latent_dim: size of z (reference: 128).
        out_factor: output scale; 2.0 for synthesis/retrofit, 1.0 for refine.

    Call:
        latents: ``[B, latent_dim]``.
        training: batch-norm mode; the reference always uses False.

    Returns:
        ``[B, image_size, image_size, channels]`` in [-out_factor, out_factor].
    """

    def __init__(self, image_size=32, width=256, channels=3, latent_dim=128, out_factor=2.0, **kwargs):
        super().__init__(**kwargs)
        _check_size(image_size, GENERATOR_TABLE, "Generator")
        table = GENERATOR_TABLE[image_size]
        _check_width(width, table, "Generator")
        _check_positive("channels", channels, "Generator")
        _check_positive("latent_dim", latent_dim, "Generator")
        self.image_size, self.width, self.channels = image_size, width, channels
        self.latent_dim, self.out_factor = latent_dim, float(out_factor)
        self.latent_shape = (latent_dim,)
        policy = self.dtype_policy  # every layer computes under this model's policy (``dtype=``)
        self.lin = keras.layers.Dense(BOTTOM_WIDTH * BOTTOM_WIDTH * width, name="lin_1", dtype=policy)
        self.blocks = [
            UpBlock(width // div, upsample=True, name=f"block{i + 2}", dtype=policy) for i, div in enumerate(table)
        ]
        n = len(table) + 2
        self.bn, self.conv = _tail_layers(n, channels, policy)
        self.build((None, latent_dim))

    def build(self, input_shape):
        self.lin.build(input_shape)
        shape = _build_chain(self.blocks, (None, BOTTOM_WIDTH, BOTTOM_WIDTH, self.width))
        self.bn.build(shape)
        self.conv.build(shape)
        self.built = True

    def call(self, latents, training=False):
        h = self.lin(latents)
        h = ops.reshape(h, (-1, self.width, BOTTOM_WIDTH, BOTTOM_WIDTH))
        h = ops.transpose(h, (0, 2, 3, 1))
        return _up_and_tail(self.blocks, self.bn, self.conv, h, self.out_factor, training)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "width": self.width,
            "channels": self.channels,
            "latent_dim": self.latent_dim,
            "out_factor": self.out_factor,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class RetrofitDecoder(keras.Model):
    """Decoder of the retrofit autoencoder, used as the generator of retrofit.

    Stem up-block (no upsampling) → up-block(×2) → two up-blocks → generator
    tail. Maps a ``[16, 16, 1]`` latent grid to a 32×32 image.

    Args:
        width: the reference's ``ngf`` (default 256).
        channels: image channels.
        latent_shape: ``(h, w, c)`` of the latent grid; the image is ``2h×2w``.
        out_factor: output scale (2.0 in the reference).

    Call:
        latents: ``[B, *latent_shape]``.
        training: batch-norm mode.

    Returns:
        ``[B, 2h, 2w, channels]`` in [-out_factor, out_factor].
    """

    def __init__(self, width=256, channels=3, latent_shape=(16, 16, 1), out_factor=2.0, **kwargs):
        super().__init__(**kwargs)
        _check_positive("width", width, "RetrofitDecoder")
        _check_positive("channels", channels, "RetrofitDecoder")
        latent_shape = tuple(int(d) for d in latent_shape)
        if len(latent_shape) != 3:
            raise ValueError(f"RetrofitDecoder: latent_shape={latent_shape!r} must be (height, width, channels)")
        self.width, self.channels, self.latent_shape = width, channels, latent_shape
        self.out_factor = float(out_factor)
        self.image_size = 2 * latent_shape[0]
        policy = self.dtype_policy  # every layer computes under this model's policy (``dtype=``)
        self.blocks = [
            UpBlock(width // div, upsample=up, stem=(i == 0), name=f"block{i + 1}", dtype=policy)
            for i, (div, up) in enumerate(DECODER_BLOCKS)
        ]
        self.bn, self.conv = _tail_layers(len(DECODER_BLOCKS) + 1, channels, policy)
        self.build((None, *latent_shape))

    def build(self, input_shape):
        shape = _build_chain(self.blocks, input_shape)
        self.bn.build(shape)
        self.conv.build(shape)
        self.built = True

    def call(self, latents, training=False):
        return _up_and_tail(self.blocks, self.bn, self.conv, latents, self.out_factor, training)

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "channels": self.channels,
            "latent_shape": list(self.latent_shape),
            "out_factor": self.out_factor,
        }


def add_prior_weights(layer, components, size):
    """The fixed weights of a fitted latent prior on ``layer``: ``prior_weights`` ``[K]``, ``prior_mean`` ``[K, D]``
    and ``prior_scale`` ``[K, D, D]`` (until fitted: one component, or K equal ones, of ``N(0, I)``)."""
    if not (isinstance(components, int) and not isinstance(components, bool) and components >= 1):
        raise ValueError(f"latent prior: components={components!r} must be a positive integer")

    def identities(shape, dtype=None):
        return ops.broadcast_to(ops.eye(size, dtype=dtype), shape)

    layer.prior_weights = layer.add_weight(
        shape=(components,),
        initializer=keras.initializers.Constant(1.0 / components),
        trainable=False,
        name="prior_weights",
    )
    layer.prior_mean = layer.add_weight(
        shape=(components, size), initializer="zeros", trainable=False, name="prior_mean"
    )
    layer.prior_scale = layer.add_weight(
        shape=(components, size, size), initializer=identities, trainable=False, name="prior_scale"
    )


# Φ(ε) of a float32 ε saturates at 1 for ε above about 5.3: the renormalised
# uniform stays inside (0, 1) so that Φ⁻¹ of it is finite.
_UNIFORM_MARGIN = 1e-7


@keras.saving.register_keras_serializable(package=PACKAGE)
class PriorDecoder(keras.Model):
    """A decoder behind a prior fitted to its codes: ``G(ε) = D(μ_k + S_k·ε')``, ``ε ~ N(0, I)``.

    A deterministic autoencoder's codes are not ``N(0, I)``: decoded, random
    latents are blots of a few classes. Fitting a density to the encoder's
    codes of the training images (ex-post density estimation, as Ghosh et
    al. 2020 do for regularised autoencoders) and reading ``ε ~ N(0, I)``
    through it makes the decoder draw every class; the joint Langevin chain
    then moves ``ε`` in whitened coordinates. The density is a mixture of K
    Gaussians ``(w_k, μ_k, S_k)``, ``S_k`` the symmetric square root of the
    k-th covariance. With K > 1 the first coordinate of ``ε`` is split into
    the component and a fresh normal by the inverse-CDF method:
    ``u = Φ(ε_0)`` picks the k whose cumulative-weight interval
    ``[c_{k-1}, c_k)`` holds it, and ``ε'_0 = Φ⁻¹((u − c_{k-1}) / w_k)`` is
    again ``N(0, 1)`` and independent of k, so ``μ_k + S_k·ε'`` is an exact
    draw of the mixture. With K = 1, ``ε' = ε``. The weights are fixed
    (``Autoencoder.fit_latent_prior`` sets them).

    Args:
        decoder: ``[B, *latent_shape]`` → ``[B, H, W, C]`` (``RetrofitDecoder``).
        components: K ≥ 1.

    Call:
        latents: ``[B, *latent_shape]``, the whitened ``ε``.
        training: the decoder's batch-norm mode.

    Returns:
        the decoder's images of ``μ_k + S_k·ε'``.
    """

    def __init__(self, decoder, components=1, **kwargs):
        super().__init__(**kwargs)
        self.decoder = decoder
        self.latent_shape = tuple(decoder.latent_shape)
        self.image_size, self.channels = decoder.image_size, decoder.channels
        self.components = components
        add_prior_weights(self, components, math.prod(self.latent_shape))

    def _split_first_coordinate(self, flat):
        """``(component [B] int, ε' [B, D])`` of ``ε`` ``[B, D]`` (the inverse-CDF split above)."""
        weights = ops.cast(self.prior_weights, flat.dtype)
        upper = ops.cumsum(weights)
        lower = upper - weights
        uniform = 0.5 * (1.0 + ops.erf(flat[:, :1] / math.sqrt(2.0)))  # [B, 1]
        # The last interval is closed above, so that u = 1 (saturated Φ) still picks a component.
        inside = ops.logical_and(
            uniform >= lower, ops.logical_or(uniform < upper, ops.arange(self.components) == self.components - 1)
        )
        one_hot = ops.cast(inside, flat.dtype)
        # Where rounding puts u in two intervals, the first one holds it.
        one_hot = one_hot * ops.cast(ops.cumsum(one_hot, axis=1) <= 1.0, flat.dtype)
        # A component of weight 0 is never picked; the floor keeps its 0/0 out of the sum.
        shares = (uniform - lower) / ops.maximum(weights, _UNIFORM_MARGIN)
        renormalised = ops.sum(one_hot * shares, axis=1, keepdims=True)
        renormalised = ops.clip(renormalised, _UNIFORM_MARGIN, 1.0 - _UNIFORM_MARGIN)
        first = math.sqrt(2.0) * ops.erfinv(2.0 * renormalised - 1.0)
        return ops.argmax(one_hot, axis=1), ops.concatenate([first, flat[:, 1:]], axis=1)

    def call(self, latents, training=False):
        flat = ops.reshape(latents, (-1, self.prior_mean.shape[-1]))
        mean, scale = ops.cast(self.prior_mean, flat.dtype), ops.cast(self.prior_scale, flat.dtype)
        if self.components == 1:
            codes = mean[0] + ops.matmul(flat, ops.transpose(scale[0]))
        else:
            component, whitened = self._split_first_coordinate(flat)
            # Each chain's own component only: [B, D, D] scales, not all K codes per chain.
            codes = ops.take(mean, component, axis=0) + ops.einsum(
                "bij,bj->bi", ops.take(scale, component, axis=0), whitened
            )
        return self.decoder(ops.reshape(codes, (-1, *self.latent_shape)), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "components": self.components,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RetrofitEncoder(keras.Model):
    """Encoder of the retrofit autoencoder.

    Hat-style stem (no downsampling) → down-block → two blocks → relu →
    conv3×3 to ``latent_channels`` → optional sphere projection
    ``z·sqrt(D)/(||z|| + 1e-6)``.

    Args:
        width: the reference's ``ngf`` (default 256).
        channels: image channels.
        latent_channels: channels of the latent grid (reference: 1).
        normalize: project each latent onto the sphere of radius sqrt(D).

    Call:
        images: ``[B, H, W, channels]`` in [-1, 1].

    Returns:
        ``[B, H/2, W/2, latent_channels]`` latents.
    """

    def __init__(self, width=256, channels=3, latent_channels=1, normalize=True, image_size=32, **kwargs):
        super().__init__(**kwargs)
        _check_positive("width", width, "RetrofitEncoder")
        _check_positive("channels", channels, "RetrofitEncoder")
        _check_positive("latent_channels", latent_channels, "RetrofitEncoder")
        _check_positive("image_size", image_size, "RetrofitEncoder")
        if image_size % 2:
            raise ValueError(f"RetrofitEncoder: image_size={image_size!r} must be even")
        self.width, self.channels = width, channels
        self.latent_channels, self.normalize = latent_channels, bool(normalize)
        self.image_size = image_size
        policy = self.dtype_policy  # every layer computes under this model's policy (``dtype=``)
        self.blocks = [
            DownBlock(width // div, downsample=down, stem=(i == 0), name=f"block{i + 1}", dtype=policy)
            for i, (div, down) in enumerate(ENCODER_BLOCKS)
        ]
        self.to_latent = keras.layers.Conv2D(latent_channels, 3, padding="same", name="conv2latent", dtype=policy)
        self.project = SphereProjection(name="sphere", dtype=policy)
        self.build((None, image_size, image_size, channels))

    def build(self, input_shape):
        shape = _build_chain(self.blocks, input_shape)
        self.to_latent.build(shape)
        self.built = True

    def call(self, images):
        h = images
        for block in self.blocks:
            h = block(h)
        z = self.to_latent(ops.relu(h))
        return self.project(z) if self.normalize else z

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "channels": self.channels,
            "latent_channels": self.latent_channels,
            "normalize": self.normalize,
            "image_size": self.image_size,
        }
