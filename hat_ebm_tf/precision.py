"""Mixed-precision policy choice: reduced precision only where the device runs it natively.

The networks compute in the policy's dtype; the Langevin chain state and the
energies summed into its gradient stay float32 whatever the policy
(``hat_ebm_tf.sampler``). A CPU runs bfloat16 natively only with AVX512_BF16
or AMX; elsewhere oneDNN emulates it, slower than float32, so ``auto`` keeps
float32 there.
"""

import contextlib

import keras
import tensorflow as tf

# /proc/cpuinfo flags with which a CPU computes bfloat16 natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# Flags worth naming in a benchmark report: the vector units the kernels can use.
REPORTED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
POLICY_CHOICES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# GPUs from this compute capability on (Ampere) run bfloat16 natively; older ones float16 only.
GPU_BF16_CAPABILITY = (8, 0)


def cpu_info(path="/proc/cpuinfo"):
    """``(model name, frozenset of feature flags)`` of the first CPU in ``path`` ("unknown", empty where absent)."""
    model, flags = "unknown", frozenset()
    try:
        with open(path) as lines:
            for line in lines:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return model, flags


def native_policy(cpu_flags=None):
    """``(policy, reason)``: the mixed policy this device runs natively, or ``float32``.

    GPU: ``mixed_bfloat16`` from compute capability 8.0, else ``mixed_float16``.
    CPU: ``mixed_bfloat16`` with AVX512_BF16 or AMX-BF16, else ``float32``.

    Args:
        cpu_flags: the CPU's feature flags; None reads ``/proc/cpuinfo``.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        if tuple(capability) >= GPU_BF16_CAPABILITY:
            return "mixed_bfloat16", f"GPU with compute capability {capability}: bfloat16 is native"
        return "mixed_float16", "GPU present: float16 is native"
    native = sorted(set(BF16_CPU_FLAGS) & set(cpu_info()[1] if cpu_flags is None else cpu_flags))
    if native:
        return "mixed_bfloat16", f"CPU has {', '.join(native).upper()}: bfloat16 is native"
    return "float32", "this CPU has no AVX512_BF16/AMX: bfloat16 would be emulated, slower than float32"


def resolve_policy(choice="auto"):
    """The Keras dtype policy name for ``choice``.

    Args:
        choice: ``auto`` (``native_policy``), or a policy name from
            ``POLICY_CHOICES`` used as is.

    Returns:
        ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.

    Raises:
        ValueError: ``choice`` is not one of ``POLICY_CHOICES``.
    """
    if choice not in POLICY_CHOICES:
        raise ValueError(f"mixed precision {choice!r}: expected one of {list(POLICY_CHOICES)}")
    return native_policy()[0] if choice == "auto" else choice


@contextlib.contextmanager
def global_policy(name):
    """Keras's global dtype policy set to ``name`` inside the block, and the caller's restored after it.

    Networks built inside take the policy (``HatNetwork`` and the others
    default to it); a training run sets its config's policy this way, so that
    it neither inherits the caller's nor leaves its own behind.

    Args:
        name: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
