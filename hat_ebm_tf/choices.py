# The SN-GAN layouts behind the width tables are Miyato et al.'s (2018, MIT
# licence), as the Hat EBM reference implementation (Hill et al., NeurIPS 2022,
# github.com/point0bar1/hat-ebm) sizes them. Independent code.
"""The fixed choices that configs and flags name, free of TensorFlow.

Distribution strategies, and the networks' width tables per image size
(the training modes are ``hat_ebm_tf.modes``). ``distribute`` and ``networks``
build from them; configs are checked against them before TensorFlow loads, so
that ``hat-ebm train`` names a bad config without TensorFlow's start-up of
several seconds.
"""

# hat_ebm_tf.distribute.make_strategy's kinds.
STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")

# The most images one request to an export's `sample` or `refine` signature draws (its chains run at once), and
# the max_batch_size of the batching_parameters.txt that `hat-ebm export` writes, so that TF Serving's merged
# batches stay within it.
MAX_SAMPLE_BATCH = 64

# Hat network: one (width divisor, downsample) entry per residual block; the
# first entry is the stem. Block i has width `width // divisor`.
HAT_TABLE = {
    16: ((1, True), (1, True), (1, False)),
    32: ((1, True), (1, True), (1, False), (1, False)),
    64: ((16, True), (8, True), (4, True), (2, True), (1, True)),
    128: ((16, True), (8, True), (4, True), (2, True), (1, True), (1, False)),
}

# Generator: width divisor of each up-block after the 4×4 base (each doubles
# the size). The dense layer outputs `width` channels at 4×4.
GENERATOR_TABLE = {
    16: (1, 1),
    32: (1, 1, 1),
    64: (2, 4, 8, 16),
    128: (1, 2, 4, 8, 16),
}
