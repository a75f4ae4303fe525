"""Helpers shared by the ``hat-ebm`` sub-commands."""

import argparse
import dataclasses

from hat_ebm_tf.argtypes import non_negative_float, non_negative_int, positive_float, positive_float_or_none
from hat_ebm_tf.config import check_memory
from hat_ebm_tf.errors import ConfigError
from hat_ebm_tf.run_dir import RunDir
from hat_ebm_tf.sampler_config import LangevinConfig

# The argparse type of a LangevinConfig field, by its type and its metadata's minimum: the flags refuse
# what the field refuses (the float32 rule of hat_ebm_tf.sampler_config), as the command line is parsed.
_FLAG_TYPES = {
    (int, None): non_negative_int,
    (bool, None): bool,
    (float, "positive"): positive_float,
    (float, "non-negative"): non_negative_float,
    (float | None, "positive"): positive_float_or_none,
}


def _sampler_flags():
    """``{LangevinConfig field: (flag, argparse type, help)}``, built from the fields and their metadata.

    Every field but ``update_latents`` (fixed by the model's mode) has a flag:
    ``--field-name`` unless the field names another (``num_steps``:
    ``--steps``). The argparse type refuses the values the field refuses
    (``_FLAG_TYPES``); ``float | None`` reads ``none`` as None.
    """
    flags = {}
    for field in dataclasses.fields(LangevinConfig):
        flag = field.metadata.get("flag", "--" + field.name.replace("_", "-"))
        if flag is not None:
            kind = _FLAG_TYPES[field.type, field.metadata.get("minimum")]
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
            action = {"type": kind, "metavar": "N" if kind is non_negative_int else "X"}
        group.add_argument(flag, dest=field, default=argparse.SUPPRESS, help=text, **action)


# The default of --max-memory-gb, in GB.
DEFAULT_MAX_MEMORY_GB = 4.0


def add_memory_flag(parser, what):
    """Add ``--max-memory-gb`` (positive and finite, default 4) to a sub-command's parser.

    Args:
        parser: the sub-command's ``argparse.ArgumentParser``.
        what: what it bounds, for the help, e.g. ``"its running chains"``.
    """
    parser.add_argument(
        "--max-memory-gb",
        type=positive_float,
        default=DEFAULT_MAX_MEMORY_GB,
        help=f"refuse to start when {what} would take more memory, in GB (default {DEFAULT_MAX_MEMORY_GB:g})",
    )


def check_memory_flag(parts, args):
    """Refuse an estimate ``{what: bytes}`` beyond ``--max-memory-gb`` (``config.check_memory``: a ``LimitError``)."""
    check_memory(parts, args.max_memory_gb, "raise --max-memory-gb")


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
