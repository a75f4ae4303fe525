"""The training modes: what each one samples, trains and keeps, named once and free of TensorFlow.

A config's ``mode`` (``hat_ebm_tf.config``), ``HatEBM``'s ``mode``, the
``--mode`` of ``hat-ebm import-reference`` and the SavedModel's signatures all
look their mode up here (``get_mode``), and ask it rather than its name.

``synthesis`` is the conditional form ``p(y | z) p0(z)`` with a cooperative
generator; ``refine`` and ``retrofit`` are the joint form over a frozen,
pretrained generator (a GAN generator, or an autoencoder's decoder);
``autoencoder`` trains the autoencoder that retrofit's decoder comes from, and
is a mode of configs only, not of ``HatEBM``.
"""

import dataclasses

from hat_ebm_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Mode:
    """One training mode.

    Attributes:
        name: the name configs and flags give it.
        hat_ebm: a mode of ``HatEBM`` (``autoencoder`` trains an ``Autoencoder``).
        joint: Langevin runs on the latents too (the joint form), not on the
            residuals only; a ``HatEBM``'s sampler must have
            ``update_latents == joint``.
        trains_generator: the generator learns in this mode; otherwise it is a
            pretrained one, loaded and frozen.
        uses_banks: the model keeps persistent banks of ``(z, G(z) + y)``
            that the cooperative generator regresses onto.
        generator: the generator's kind: ``sngan`` (an SN-GAN generator of a
            latent vector) or ``decoder`` (the retrofit autoencoder's decoder
            of a latent grid).
        out_factor: the generator output scale of the reference
            implementation's models in this mode, the default of an import.
    """

    name: str
    hat_ebm: bool
    joint: bool
    trains_generator: bool
    uses_banks: bool
    generator: str
    out_factor: float = 2.0

    def check_sampler(self, sampler, where=""):
        """Refuse a sampler whose ``update_latents`` is not this mode's ``joint`` (a ``ConfigError``).

        Args:
            sampler: a ``LangevinConfig``.
            where: the caller, which starts the message (e.g. ``"HatEBM"``), or "".
        """
        if self.hat_ebm and sampler.update_latents != self.joint:
            raise ConfigError(
                f"{_prefix(where)}mode={self.name!r} needs sampler.update_latents={self.joint} (synthesis runs "
                "Langevin on residuals only; refine and retrofit on latents and residuals)"
            )


SYNTHESIS = Mode("synthesis", hat_ebm=True, joint=False, trains_generator=True, uses_banks=True, generator="sngan")
# The reference's refine models are GAN generators whose tanh output is the image itself: scale 1.
REFINE = Mode(
    "refine", hat_ebm=True, joint=True, trains_generator=False, uses_banks=False, generator="sngan", out_factor=1.0
)
RETROFIT = Mode("retrofit", hat_ebm=True, joint=True, trains_generator=False, uses_banks=False, generator="decoder")
AUTOENCODER = Mode(
    "autoencoder", hat_ebm=False, joint=False, trains_generator=True, uses_banks=False, generator="decoder"
)

MODES = {mode.name: mode for mode in (SYNTHESIS, REFINE, RETROFIT, AUTOENCODER)}
# The modes of HatEBM, in the order the command line lists them.
HAT_EBM_MODES = tuple(name for name, mode in MODES.items() if mode.hat_ebm)


def _prefix(where):
    return f"{where}: " if where else ""


def get_mode(name, hat_ebm=False, where=""):
    """The ``Mode`` named ``name``.

    Args:
        name: a mode's name.
        hat_ebm: accept only the modes of ``HatEBM``.
        where: the caller, which starts the message (e.g. ``"HatEBM"``), or "".

    Raises:
        ConfigError: an unknown mode (or, with ``hat_ebm``, one that is not a
            Hat EBM mode), naming the known ones.
    """
    known = HAT_EBM_MODES if hat_ebm else tuple(MODES)
    if name not in known:
        raise ConfigError(f"{_prefix(where)}unknown mode={name!r}; expected one of {list(known)}")
    return MODES[name]
