# Settings of the in-graph Langevin sampler of Hat EBM (Hill et al., NeurIPS 2022);
# reference key names from github.com/point0bar1/hat-ebm (docs/reference.md). Independent code.
"""``LangevinConfig``: the sampler's settings, and the one source of the sampler flags of ``hat-ebm``.

Plain Python (no TensorFlow): ``hat_ebm_tf.cli.common`` builds the ``--steps``,
``--step-size``, ... flags of every sampling command from these fields, and
``hat-ebm --help`` answers without importing TensorFlow. The sampler itself is
``hat_ebm_tf.sampler``.
"""

import dataclasses
import math

from hat_ebm_tf.errors import ConfigError

# The normal float32 numbers: TensorFlow computes every setting in float32, and its CPU kernels flush subnormal
# values to 0, so a positive setting below FLOAT32_TINY acts as 0 and one above FLOAT32_MAX as infinity.
FLOAT32_TINY = 2.0**-126
FLOAT32_MAX = float.fromhex("0x1.fffffep+127")


def float32_problem(value, zero=False):
    """What unfits ``value`` for a positive float setting (``zero``: or 0), as the float32 TensorFlow computes; or None.

    The one rule of positive float settings, in configs and flags alike:
    finite, > 0 (or exactly 0 with ``zero``), and a normal float32 number, so
    that the value stays what it says once TensorFlow casts it (``1e-50`` is
    positive in Python and 0 in float32).

    Returns:
        None for a good value, else the problem, e.g. ``"must be > 0 and finite"``.
    """
    if zero and value == 0:
        return None
    if not (value > 0 and math.isfinite(value)):  # NaN fails `value > 0`
        return f"must be {'>= 0' if zero else '> 0'} and finite"
    if value < FLOAT32_TINY:
        return f"vanishes in float32, which TensorFlow computes in (the smallest normal float32 is {FLOAT32_TINY:.4g})"
    if value > FLOAT32_MAX:
        return f"is infinite in float32, which TensorFlow computes in (the largest float32 is {FLOAT32_MAX:.4g})"
    return None


def check_positive(name, value, zero=False, none=None):
    """Refuse a float setting that ``float32_problem`` refuses.

    Args:
        name: the setting's key, e.g. ``"training.data_epsilon"``.
        value: its value.
        zero: 0 is allowed.
        none: the word for "no value" when None is allowed (``"null"`` in configs), else None.

    Raises:
        ConfigError: naming the key, the value and the problem.
    """
    if none is not None and value is None:
        return
    problem = float32_problem(value, zero)
    if problem:
        raise ConfigError(f"{name}={value!r} {problem}" + (f", or {none}" if none else ""))


def _setting(default, text, flag="", minimum=None):
    """A ``LangevinConfig`` field: its default, its help ``text``, its flag ("" for ``--field-name``) and range.

    ``minimum`` is ``"positive"`` or ``"non-negative"`` for a float setting
    (checked by ``check_positive``, in ``LangevinConfig`` and in its flags).
    """
    metadata = {"help": text}
    if flag != "":
        metadata["flag"] = flag
    if minimum is not None:
        metadata["minimum"] = minimum
    return dataclasses.field(default=default, metadata=metadata)


def check_known_keys(values, cls, where):
    """Refuse the keys of the mapping ``values`` that are not fields of the dataclass ``cls``.

    The one check of unknown keys: ``LangevinConfig.from_dict`` and every
    section of a config (``hat_ebm_tf.config``) make it.

    Raises:
        ConfigError: naming the unknown keys, the known ones and ``where``.
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")


# Latent step size ε_z of the joint form (refine/retrofit) when none is given:
# the reference's CIFAR-10 and CelebA refine setting (docs/reference.md).
JOINT_LATENT_STEP_SIZE = 5e-3


@dataclasses.dataclass(frozen=True)
class LangevinConfig:
    """Settings of the Langevin sampler (reference key names in brackets).

    Attributes:
        num_steps: chain length (``mcmc_steps``).
        step_size: residual step size ε (``epsilon``).
        latent_step_size: latent step size ε_z (``epsilon_latent``).
        temperature: T (``mcmc_temp``); energies are divided by it.
        update_latents: run the latent step (joint form, ``update_latents``).
        noise: add the Gaussian noise terms (``use_noise``).
        max_residual_norm: per-sample bound on the residual drift step, or
            None for no clipping (``max_langevin_norm_res`` when
            ``clip_langevin_grad_res``).
        tau: strength of the Gaussian residual prior τ·Σy² (``tau_res``).
        init_scale_latent: initial ``z ~ init_scale_latent·N(0, I)``.
        init_scale_residual: initial ``y ~ init_scale_residual·N(0, I)``.
        metropolis: Metropolis-adjusted Langevin (MALA, ``hat_ebm_tf.mala``):
            each step's update becomes a proposal that every chain accepts or
            rejects; needs ``noise``. False is the reference's unadjusted
            sampler.
    """

    # metadata: the command-line flag of the field (default ``--field-name``; None: no flag) and its help.
    num_steps: int = _setting(50, "Langevin steps", flag="--steps")
    step_size: float = _setting(5e-4, "residual step size ε", minimum="positive")
    latent_step_size: float = _setting(0.0, "latent step size ε_z (refine/retrofit)", minimum="non-negative")
    # An infinite temperature would zero every gradient; one that vanishes in float32, divide the energies by 0.
    temperature: float = _setting(1e-8, "temperature T", minimum="positive")
    update_latents: bool = _setting(False, "fixed by the model's mode", flag=None)
    noise: bool = _setting(True, "add the Langevin noise terms (--no-noise: drift only)")
    max_residual_norm: float | None = _setting(None, "bound on each residual drift step, or 'none'", minimum="positive")
    tau: float = _setting(0.0, "Gaussian residual prior strength τ", minimum="non-negative")
    init_scale_latent: float = _setting(1.0, "initial z ~ scale·N(0, I)", minimum="non-negative")
    init_scale_residual: float = _setting(0.0, "initial y ~ scale·N(0, I)", minimum="non-negative")
    metropolis: bool = _setting(False, "Metropolis-adjusted Langevin: accept or reject each proposal per chain")

    def __post_init__(self):
        if not isinstance(self.num_steps, int) or self.num_steps < 0:
            raise ValueError(f"LangevinConfig: num_steps={self.num_steps!r} must be an integer >= 0")
        for field in dataclasses.fields(self):
            if "minimum" in field.metadata:
                zero, none = field.metadata["minimum"] == "non-negative", "None" if field.type == float | None else None
                check_positive(f"LangevinConfig: {field.name}", getattr(self, field.name), zero, none)
        if self.update_latents and not self.latent_step_size > 0:
            raise ValueError("LangevinConfig: update_latents=True needs latent_step_size > 0")
        if self.metropolis and not self.noise:
            raise ValueError(
                "LangevinConfig: metropolis=True needs noise=True (a deterministic proposal has no density)"
            )

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping, rejecting unknown keys with a ``ConfigError`` (a ValueError) that names them."""
        check_known_keys(values, cls, "LangevinConfig")
        return cls(**values)

    @classmethod
    def for_form(cls, joint, **settings):
        """The default sampler of the synthesis (``joint=False``) or joint form, with ``settings`` applied.

        The joint form updates latents with step ``JOINT_LATENT_STEP_SIZE``;
        synthesis keeps them fixed (latent step 0).
        """
        return cls(update_latents=joint, latent_step_size=JOINT_LATENT_STEP_SIZE if joint else 0.0, **settings)

    def to_dict(self):
        return dataclasses.asdict(self)
