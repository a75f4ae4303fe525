# Settings of the in-graph Langevin sampler of Hat EBM (Hill et al., NeurIPS 2022);
# reference key names from github.com/point0bar1/hat-ebm (REFERENCE.md). Independent code.
"""``LangevinConfig``: the sampler's settings, and the one source of the sampler flags of ``hat-ebm``.

Plain Python (no TensorFlow): ``hat_ebm_tf.cli.common`` builds the ``--steps``,
``--step-size``, ... flags of every sampling command from these fields, and
``hat-ebm --help`` answers without importing TensorFlow. The sampler itself is
``hat_ebm_tf.sampler``.
"""

import dataclasses
import math

from hat_ebm_tf.errors import ConfigError


def _setting(default, text, flag=""):
    """A ``LangevinConfig`` field: its default, its help ``text`` and its flag ("" for ``--field-name``)."""
    metadata = {"help": text}
    if flag != "":
        metadata["flag"] = flag
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
# the reference's CIFAR-10 and CelebA refine setting (REFERENCE.md).
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
    step_size: float = _setting(5e-4, "residual step size ε")
    latent_step_size: float = _setting(0.0, "latent step size ε_z (refine/retrofit)")
    temperature: float = _setting(1e-8, "temperature T")
    update_latents: bool = _setting(False, "fixed by the model's mode", flag=None)
    noise: bool = _setting(True, "add the Langevin noise terms (--no-noise: drift only)")
    max_residual_norm: float | None = _setting(None, "bound on each residual drift step, or 'none'")
    tau: float = _setting(0.0, "Gaussian residual prior strength τ")
    init_scale_latent: float = _setting(1.0, "initial z ~ scale·N(0, I)")
    init_scale_residual: float = _setting(0.0, "initial y ~ scale·N(0, I)")
    metropolis: bool = _setting(False, "Metropolis-adjusted Langevin: accept or reject each proposal per chain")

    def __post_init__(self):
        if not isinstance(self.num_steps, int) or self.num_steps < 0:
            raise ValueError(f"LangevinConfig: num_steps={self.num_steps!r} must be an integer >= 0")
        # Bounds written `not a < x < inf` also refuse NaN (an infinite temperature would zero every gradient).
        for name in ("step_size", "temperature"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"LangevinConfig: {name}={getattr(self, name)!r} must be > 0 and finite")
        for name in ("latent_step_size", "tau", "init_scale_latent", "init_scale_residual"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"LangevinConfig: {name}={getattr(self, name)!r} must be >= 0 and finite")
        if self.update_latents and not self.latent_step_size > 0:
            raise ValueError("LangevinConfig: update_latents=True needs latent_step_size > 0")
        if self.max_residual_norm is not None and not 0 < self.max_residual_norm < math.inf:
            raise ValueError(
                f"LangevinConfig: max_residual_norm={self.max_residual_norm!r} must be > 0 and finite, or None"
            )
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
