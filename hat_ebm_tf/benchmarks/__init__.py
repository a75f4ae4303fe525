"""Benchmarks of Hat EBM: ``python -m hat_ebm_tf.benchmarks`` or ``hat-ebm bench``.

One run measures, each timing a median of repeats after warm-up calls:

1. ``langevin``: Langevin steps/s and images·steps/s of the sampler, in
   synthesis (residual only) and joint (latent and residual) form, in float32
   and, where the device supports it, mixed precision.
2. ``flops``: FLOPs of one Langevin step (TensorFlow's profiler on the frozen,
   pruned one-step graph), the achieved GFLOP/s against an in-run 2048×2048
   matmul, and a check that synthesis evaluates no generator inside the loop.
3. ``jit``: the synthesis sampler with and without XLA.
4. ``train``: training steps/s of the shipped ``digits`` config and of
   ``cifar10_synthesis`` at benchmark size (random images: TFDS is offline).
5. ``memory``: peak resident memory of a long and a short chain, each in a
   fresh process.

Modules: ``common`` (settings, networks, timing), ``sampler_speed`` (1 and 3),
``flops`` (2), ``train_speed`` (4), ``memory`` (5, also the child process),
``report`` (table and targets) and ``run`` (the driver).
"""
