"""Hat EBM (Hill, Nijkamp, Mitchell, Pang, Zhu; NeurIPS 2022) in TensorFlow/Keras 3.

The package is lazy: ``import hat_ebm_tf`` imports neither TensorFlow nor
Keras, and a name below (``hat_ebm_tf.HatEBM``, ...) imports its module on
first use. So ``hat_ebm_tf.serving`` (TensorFlow and NumPy only) and the
``hat-ebm`` parser (``--help``) stay light. ``register_keras_classes()``
imports every module with serializable layers and models, so that
``keras.saving.load_model`` can read any ``.keras`` file written by this package.

Subpackages: ``quality`` (sample-quality measures), ``training`` (the
training job), ``serving`` (SavedModel export, scoring and OOD calibration),
``evaluation`` (FID/KID, OOD reports, long runs), ``cli`` (the ``hat-ebm``
command) and ``benchmarks``. Configs (``config``) and run directories
(``run_dir``) are modules of the package itself.
"""

import importlib

__version__ = "0.1.0"

# Public name → the module that defines it.
_EXPORTS = {
    "Autoencoder": "hat_ebm_tf.autoencoder",
    "DownBlock": "hat_ebm_tf.layers",
    "FusedAdam": "hat_ebm_tf.optimizers",
    "SphereProjection": "hat_ebm_tf.layers",
    "UpBlock": "hat_ebm_tf.layers",
    "MODES": "hat_ebm_tf.modes",
    "Mode": "hat_ebm_tf.modes",
    "HatEBM": "hat_ebm_tf.model",
    "Generator": "hat_ebm_tf.networks",
    "HatNetwork": "hat_ebm_tf.networks",
    "RetrofitDecoder": "hat_ebm_tf.networks",
    "RetrofitEncoder": "hat_ebm_tf.networks",
    "LangevinConfig": "hat_ebm_tf.sampler_config",
    "LangevinResult": "hat_ebm_tf.langevin_steps",
    "langevin": "hat_ebm_tf.sampler",
}

__all__ = sorted([*_EXPORTS, "register_keras_classes"])


def register_keras_classes():
    """Import every module that registers serializable Keras classes (layers, networks, models, optimizers)."""
    # networks and autoencoder import layers and model.
    for module in ("hat_ebm_tf.networks", "hat_ebm_tf.autoencoder", "hat_ebm_tf.optimizers"):
        importlib.import_module(module)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hat_ebm_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})
