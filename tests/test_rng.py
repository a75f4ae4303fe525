"""Per-row counter-based random numbers (``hat_ebm_tf.rng``): a row's draws depend on its seed and stream alone."""

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf import rng

SEEDS = np.array([[0, 0], [0, 1], [1, 0], [0, 2**32], [-1, 7], [5, 2**40]], np.int64)


@pytest.mark.parametrize("shape", [(4, 4, 1), (7,), (130,)], ids=str)
def test_a_rows_normals_depend_on_its_seed_and_stream_alone(shape):
    draws = rng.stateless_row_normal(SEEDS, 3, shape).numpy()
    assert draws.shape == (len(SEEDS), *shape) and draws.dtype == np.float32
    np.testing.assert_array_equal(rng.stateless_row_normal(SEEDS, 3, shape), draws)  # the same seed, the same draws
    # Any batch: a subset, and the rows in reverse.
    np.testing.assert_array_equal(rng.stateless_row_normal(SEEDS[2:4], 3, shape), draws[2:4])
    np.testing.assert_array_equal(rng.stateless_row_normal(SEEDS[::-1].copy(), 3, shape)[::-1], draws)
    # Another stream or another seed: other draws (every row differs from every other).
    assert not np.isclose(rng.stateless_row_normal(SEEDS, 4, shape), draws).any()
    flat = draws.reshape(len(SEEDS), -1)
    assert all(not np.isclose(flat[i], flat[j]).all() for i in range(len(flat)) for j in range(i))


def test_both_words_of_a_seed_and_all_64_bits_of_a_word_key_the_row():
    # (0, 1), (1, 0) and (0, 2**32) differ in the second word, the first word, and the second word's high half.
    keys = rng.row_keys(SEEDS, tf.constant(0, tf.int64)).numpy()
    assert keys.shape == (len(SEEDS), 1) and keys.dtype == np.uint32
    assert len(np.unique(keys)) == len(SEEDS)
    streams = [rng.row_keys(SEEDS[:1], tf.constant(s, tf.int64)).numpy().item() for s in (-1, 0, 1, 2**33)]
    assert len(set(streams)) == 4


def test_the_keys_and_draws_of_a_seed_stay_the_same():
    """Pinned values: a served model's draws for a seed must not change with the package version."""
    keys = rng.row_keys(SEEDS, tf.constant(-3, tf.int64)).numpy().ravel().tolist()
    assert keys == [3801972253, 2672130384, 1208633000, 2527560131, 1686300870, 1188811697]
    assert rng.row_keys(SEEDS[4:5], tf.constant(2**33 + 1, tf.int64)).numpy().item() == 643439740
    np.testing.assert_array_equal(
        rng.stateless_row_normal(SEEDS[4:5], 11, (3,)),
        np.float32([[-0.5919044613838196, 0.3399461507797241, -1.5340642929077148]]),
    )


def test_uniforms_and_normals_follow_their_laws():
    seeds = np.stack([np.zeros(64, np.int64), np.arange(64)], axis=1)
    uniforms = rng.stateless_row_uniform(seeds, 0, 1000).numpy().ravel()
    assert 0.0 < uniforms.min() and uniforms.max() < 1.0  # the open interval: log(u) of Box–Muller stays finite
    # 64 000 draws: standard errors 0.0011 (uniform mean), 0.004 (normal mean) and 0.0056 (normal variance).
    assert uniforms.mean() == pytest.approx(0.5, abs=0.005)
    assert np.histogram(uniforms, bins=10, range=(0, 1))[0].min() > 6000
    normals = rng.stateless_row_normal(seeds, 0, (1000,)).numpy().ravel()
    assert np.isfinite(normals).all()
    assert normals.mean() == pytest.approx(0.0, abs=0.02) and normals.var() == pytest.approx(1.0, abs=0.03)
    assert np.mean(np.abs(normals) > 1.96) == pytest.approx(0.05, abs=0.005)


def test_step_seeds_of_a_run_never_share_a_word():
    words = [int(rng.step_seed(seed, step)) for seed in range(4) for step in range(0, 100_000, 997)]
    assert len(set(words)) == len(words)
    assert rng.step_seed(3, 5).dtype == tf.int64 and int(rng.step_seed(0, tf.constant(5))) == 5


def test_the_registered_salts_are_distinct_and_below_the_stride():
    salts = {name: value for name, value in vars(rng).items() if name.startswith("SALT_")}
    assert len(set(salts.values())) == len(salts) >= 8
    assert all(0 <= value < rng.STREAM_STRIDE for value in salts.values()), salts
    assert rng.STREAM_AUTOENCODER_NOISE < 0  # streams of other models are negative


def test_row_seeds_and_the_draws_of_a_langevin_step():
    seeds = rng.row_seeds(7, 3, offset=2).numpy()
    assert seeds.dtype == np.int64 and seeds.tolist() == [[7, 2], [7, 3], [7, 4]]
    # A step's draws are stream step·STREAM_STRIDE + salt: another salt or step is another stream.
    noise = rng.row_normal(seeds, (5,), rng.SALT_NOISE_RESIDUAL, step=3).numpy()
    stream = 3 * rng.STREAM_STRIDE + rng.SALT_NOISE_RESIDUAL
    np.testing.assert_array_equal(noise, rng.stateless_row_normal(seeds, stream, (5,)))
    assert not np.isclose(rng.row_normal(seeds, (5,), rng.SALT_NOISE_RESIDUAL, step=4), noise).any()
    uniform = rng.row_uniform(seeds, rng.SALT_ACCEPT_RESIDUAL, step=3).numpy()
    stream = 3 * rng.STREAM_STRIDE + rng.SALT_ACCEPT_RESIDUAL
    assert uniform.shape == (3,) and np.array_equal(uniform, rng.stateless_row_uniform(seeds, stream, 1)[:, 0])
