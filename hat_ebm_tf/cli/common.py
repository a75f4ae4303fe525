"""Helpers shared by the ``hat-ebm`` sub-commands."""

import argparse
import dataclasses

from hat_ebm_tf.argtypes import float_or_none

# The sampler flags of `sample`, `fid`, `export` and `import-reference`:
# LangevinConfig field → (flag, argparse type, help). Every field but
# update_latents (fixed by the model's mode) has one, and the types are the
# fields' (tests/test_main.py checks both against LangevinConfig). A table, not
# built from dataclasses.fields(LangevinConfig): that would import TensorFlow
# and Keras to build the parser, and `hat-ebm --help` answers without them.
SAMPLER_FLAGS = {
    "num_steps": ("--steps", int, "Langevin steps"),
    "step_size": ("--step-size", float, "residual step size ε"),
    "latent_step_size": ("--latent-step-size", float, "latent step size ε_z (refine/retrofit)"),
    "temperature": ("--temperature", float, "temperature T"),
    "noise": ("--noise", bool, "add the Langevin noise terms (--no-noise: drift only)"),
    "max_residual_norm": ("--max-residual-norm", float_or_none, "bound on each residual drift step, or 'none'"),
    "tau": ("--tau", float, "Gaussian residual prior strength τ"),
    "init_scale_latent": ("--init-scale-latent", float, "initial z ~ scale·N(0, I)"),
    "init_scale_residual": ("--init-scale-residual", float, "initial y ~ scale·N(0, I)"),
    "metropolis": ("--metropolis", bool, "Metropolis-adjusted Langevin: accept or reject each proposal per chain"),
}


def add_sampler_flags(parser, default):
    """Add the sampler flags of ``SAMPLER_FLAGS`` to a sub-command's parser.

    Args:
        parser: the sub-command's ``argparse.ArgumentParser``.
        default: what the flags override, for the help, e.g. ``"the run's
            evaluation sampler"``.
    """
    group = parser.add_argument_group(f"sampler settings (default: {default})")
    for field, (flag, kind, text) in SAMPLER_FLAGS.items():
        # A flag left out stays absent from the namespace (SUPPRESS), so that
        # every value, None included (`--max-residual-norm none`), is an override.
        if kind is bool:
            action = {"action": argparse.BooleanOptionalAction}
        else:
            action = {"type": kind, "metavar": "N" if kind is int else "X"}
        group.add_argument(flag, dest=field, default=argparse.SUPPRESS, help=text, **action)


def sampler_overrides(args):
    """The sampler flags given on the command line: ``{LangevinConfig field: value}``."""
    return {field: getattr(args, field) for field in SAMPLER_FLAGS if hasattr(args, field)}


def apply_sampler_flags(config, args):
    """``config`` (a ``LangevinConfig``) with the sampler flags of ``args`` applied, validated.

    Raises:
        ConfigError: a flag's value is out of range, naming the setting.
    """
    from hat_ebm_tf.errors import ConfigError

    try:
        return dataclasses.replace(config, **sampler_overrides(args))
    except ValueError as err:
        raise ConfigError(f"sampler flags: {err}") from err


def load_model_and_sampler(path, args):
    """A trained ``HatEBM`` and its sampler: the run's evaluation sampler with the sampler flags of ``args``."""
    from hat_ebm_tf.training.run_dir import RunDir

    model = RunDir.load_model(path)
    return model, apply_sampler_flags(RunDir.evaluation_sampler(path, model), args)
