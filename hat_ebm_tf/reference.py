# Loading checkpoints written by the Hat EBM reference implementation (Hill et
# al., NeurIPS 2022, github.com/point0bar1/hat-ebm; TF 2.6 tf.keras subclassed
# models saved with `save_weights("*.ckpt")`). Independent implementation: the
# key layout `block2/bn_1/gamma/.ATTRIBUTES/VARIABLE_VALUE` is read from the
# checkpoints themselves.
"""Build our Keras networks from reference checkpoints, all or nothing."""

import os
import re

import numpy as np
import tensorflow as tf

from hat_ebm_tf.choices import GENERATOR_TABLE, HAT_TABLE
from hat_ebm_tf.errors import ModelFileError
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.sampler_config import LangevinConfig

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class ReferenceCheckpointError(ModelFileError):
    """A reference checkpoint is missing, unreadable, or does not fit the network."""


# What TensorFlow's checkpoint reader raises for a missing, truncated or corrupt file (a short `.data-*` file:
# IndexError "Read less bytes than requested").
_READ_ERRORS = (tf.errors.OpError, ValueError, OSError, RuntimeError, IndexError)


def _reader(path):
    path = os.fspath(path)
    try:
        return tf.train.load_checkpoint(path)
    except _READ_ERRORS as err:
        raise ReferenceCheckpointError(
            f"cannot read reference checkpoint {path!r}: {type(err).__name__}: {err}. "
            "Pass the prefix of the checkpoint files (e.g. 'ebm32.ckpt' for 'ebm32.ckpt.index' "
            "and 'ebm32.ckpt.data-00000-of-00001')."
        ) from err


def checkpoint_shapes(path):
    """Model-variable keys of a reference checkpoint → shapes (optimizer slots dropped).

    Args:
        path: checkpoint prefix (``.../name.ckpt``).

    Returns:
        dict ``{"block2/conv_1/kernel": [3, 3, 64, 64], ...}``.
    """
    shapes = _reader(path).get_variable_to_shape_map()
    return {
        key[: -len(SUFFIX)]: list(shape)
        for key, shape in shapes.items()
        if key.endswith(SUFFIX)
        and not key.startswith(("_", "optimizer", "save_counter"))
        and "OPTIMIZER_SLOT" not in key
    }


def _variable_key(variable):
    # Keras paths are "<model name>/<block>/<layer>/<var>"; the reference's
    # keys are the same without the model name.
    return variable.path.split("/", 1)[1]


def load_reference_weights(network, path):
    """Copy every variable of a reference checkpoint into ``network``.

    The checkpoint and the network must agree exactly: a key the network lacks,
    a network variable the checkpoint lacks, or a shape mismatch raises before
    anything is assigned, so the network is never partially loaded.

    Args:
        network: a built ``HatNetwork``, ``Generator``, ``RetrofitDecoder`` or
            ``RetrofitEncoder``.
        path: checkpoint prefix.

    Raises:
        ReferenceCheckpointError: naming every offending key with both shapes.
    """
    reader = _reader(path)
    ckpt = checkpoint_shapes(path)
    ours = {_variable_key(v): v for v in network.weights}
    problems = []
    for key in sorted(set(ours) - set(ckpt)):
        problems.append(f"missing in checkpoint: {key} (network shape {list(ours[key].shape)})")
    for key in sorted(set(ckpt) - set(ours)):
        problems.append(f"unused checkpoint variable: {key} (checkpoint shape {ckpt[key]})")
    for key in sorted(set(ours) & set(ckpt)):
        if list(ours[key].shape) != ckpt[key]:
            problems.append(f"shape mismatch at {key}: checkpoint {ckpt[key]} vs network {list(ours[key].shape)}")
    if problems:
        raise ReferenceCheckpointError(
            f"reference checkpoint {os.fspath(path)!r} does not fit {type(network).__name__} "
            f"({network.name}):\n  " + "\n  ".join(problems)
        )
    try:
        values = {key: reader.get_tensor(key + SUFFIX) for key in ours}
    except _READ_ERRORS as err:
        raise ReferenceCheckpointError(
            f"cannot read the values of reference checkpoint {os.fspath(path)!r} (its .data-* file is truncated or "
            f"damaged?): {type(err).__name__}: {err}"
        ) from err
    for key, variable in ours.items():
        variable.assign(np.asarray(values[key], dtype=variable.dtype))
    return network


def _block_count(shapes, pattern):
    indices = {int(m.group(1)) for k in shapes for m in [re.match(pattern, k)] if m}
    return len(indices)


def _require(shapes, key, path, family):
    if key not in shapes:
        raise ReferenceCheckpointError(
            f"reference checkpoint {os.fspath(path)!r} has no variable {key!r}, so it is not a {family} "
            f"checkpoint; it holds {sorted(shapes)[:6]}..."
        )
    return shapes[key]


def _size_from_blocks(count, table, family, path):
    sizes = [size for size, blocks in table.items() if len(blocks) == count]
    if not sizes:
        raise ReferenceCheckpointError(
            f"reference checkpoint {os.fspath(path)!r}: {count} residual blocks match no {family} size {sorted(table)}"
        )
    return sizes[0]


def hat_from_reference(path, name="hat_network"):
    """Build a ``HatNetwork`` whose size, width and channels fit the checkpoint, and load it."""
    shapes = checkpoint_shapes(path)
    count = 1 + _block_count(shapes, r"block(\d+)/")
    image_size = _size_from_blocks(count, HAT_TABLE, "hat network", path)
    width = _require(shapes, f"lin_{count + 1}/kernel", path, "hat network")[0]
    channels = _require(shapes, "conv_1/conv_1/kernel", path, "hat network")[2]
    net = HatNetwork(image_size=image_size, width=width, channels=channels, name=name)
    return load_reference_weights(net, path)


def generator_from_reference(path, out_factor, name="generator"):
    """Build a ``Generator`` fitting the checkpoint (out_factor is not stored in it), and load it."""
    shapes = checkpoint_shapes(path)
    count = _block_count(shapes, r"block(\d+)/")
    image_size = _size_from_blocks(count, GENERATOR_TABLE, "generator", path)
    latent_dim, dense_out = _require(shapes, "lin_1/kernel", path, "generator")
    channels = _require(shapes, f"conv_{count + 2}/kernel", path, "generator")[3]
    net = Generator(
        image_size=image_size,
        width=dense_out // 16,
        channels=channels,
        latent_dim=latent_dim,
        out_factor=out_factor,
        name=name,
    )
    return load_reference_weights(net, path)


def _retrofit_channels(path, last_conv, family):
    """``(input channels, width, output channels)`` of a retrofit decoder's or encoder's checkpoint.

    Both start with a stem block whose first conv takes the input (latent grid or image) to ``width``
    channels, and end with the conv ``last_conv`` that gives the output (image or latent grid).
    """
    shapes = checkpoint_shapes(path)
    _, _, inputs, width = _require(shapes, "block1/conv_1/kernel", path, family)
    return inputs, width, _require(shapes, f"{last_conv}/kernel", path, family)[3]


def decoder_from_reference(path, out_factor, latent_hw=(16, 16), name="retrofit_decoder"):
    """Build a ``RetrofitDecoder`` fitting the checkpoint, and load it."""
    latent_channels, width, channels = _retrofit_channels(path, "conv_5", "retrofit decoder")
    latent_shape = (*latent_hw, latent_channels)
    net = RetrofitDecoder(width=width, channels=channels, latent_shape=latent_shape, out_factor=out_factor, name=name)
    return load_reference_weights(net, path)


def encoder_from_reference(path, normalize=True, image_size=32, name="retrofit_encoder"):
    """Build a ``RetrofitEncoder`` fitting the checkpoint, and load it."""
    channels, width, latent_channels = _retrofit_channels(path, "conv2latent", "retrofit encoder")
    net = RetrofitEncoder(
        width=width,
        channels=channels,
        latent_channels=latent_channels,
        normalize=normalize,
        image_size=image_size,
        name=name,
    )
    return load_reference_weights(net, path)


# Reference sampler keys → LangevinConfig fields.
_SAMPLER_KEYS = {
    "mcmc_steps": "num_steps",
    "epsilon": "step_size",
    "epsilon_latent": "latent_step_size",
    "mcmc_temp": "temperature",
    "update_latents": "update_latents",
    "use_noise": "noise",
    "tau_res": "tau",
    "init_scale_latent": "init_scale_latent",
    "init_scale_res": "init_scale_residual",
}


def sampler_from_reference(config):
    """A ``LangevinConfig`` from a reference experiment config (its own key names).

    Keys that are not sampler settings (data paths, learning rates, ...) are
    ignored. Residual clipping is on when ``clip_langevin_grad_res`` is true,
    at ``max_langevin_norm_res``. Latents keep a step size only when
    ``update_latents`` is true.
    """
    values = {ours: config[theirs] for theirs, ours in _SAMPLER_KEYS.items() if theirs in config}
    if not config.get("update_latents", False):
        values["latent_step_size"] = 0.0
    if config.get("clip_langevin_grad_res", False):
        values["max_residual_norm"] = config["max_langevin_norm_res"]
    return LangevinConfig(**values)
