"""Helpers shared by the ``hat-ebm`` sub-commands."""

import argparse
import dataclasses

from hat_ebm_tf.argtypes import float_or_none
from hat_ebm_tf.errors import ConfigError
from hat_ebm_tf.run_dir import RunDir
from hat_ebm_tf.sampler_config import LangevinConfig


def _sampler_flags():
    """``{LangevinConfig field: (flag, argparse type, help)}``, built from the fields and their metadata.

    Every field but ``update_latents`` (fixed by the model's mode) has a flag:
    ``--field-name`` unless the field names another (``num_steps``:
    ``--steps``). The argparse type is the field's: ``float | None`` reads
    ``none`` as None.
    """
    flags = {}
    for field in dataclasses.fields(LangevinConfig):
        flag = field.metadata.get("flag", "--" + field.name.replace("_", "-"))
        if flag is not None:
            kind = float_or_none if field.type == float | None else field.type
            flags[field.name] = (flag, kind, field.metadata["help"])
    return flags


# The sampler flags of `sample`, `fid`, `export`, `longrun` and `import-reference`.
SAMPLER_FLAGS = _sampler_flags()


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
    try:
        return dataclasses.replace(config, **sampler_overrides(args))
    except ValueError as err:
        raise ConfigError(f"sampler flags: {err}") from err


def load_model_and_sampler(path, args):
    """A trained ``HatEBM`` and its sampler: the run's evaluation sampler with the sampler flags of ``args``."""
    model = RunDir.load_model(path)
    return model, apply_sampler_flags(RunDir.evaluation_sampler(path, model), args)
