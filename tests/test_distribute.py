"""Real tf.distribute strategies: 2 logical CPU devices in-process, and 2 worker processes on 127.0.0.1."""

import concurrent.futures
import json
import os
import socket
import subprocess
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from hat_ebm_tf.data import array_dataset
from hat_ebm_tf.distribute import make_strategy, mirrored_strategy
from tests.helpers import HAT_EBM, array_config, fit_on_digits, tiny_autoencoder, tiny_model


def _train_three_steps(strategy, weights):
    with strategy.scope():
        model = tiny_model(bank_size=64)
        # SGD is linear in the gradient, so a wrong loss scale or a missing
        # all-reduce shows; Adam's first steps (≈ lr·sign(g)) would also
        # amplify round-off in near-zero gradients into lr-sized differences.
        model.compile(hat_optimizer=keras.optimizers.SGD(1e-5), generator_optimizer=keras.optimizers.SGD(1e-5))
        model.set_weights(weights)
    fit_on_digits(strategy, model, steps=3)
    return model


def test_mirrored_two_devices_equals_one_device():
    weights = tiny_model(bank_size=64).get_weights()
    single = _train_three_steps(tf.distribute.get_strategy(), weights)
    mirrored = _train_three_steps(mirrored_strategy(["/cpu:0", "/cpu:1"]), weights)
    assert mirrored.distribute_strategy.num_replicas_in_sync == 2
    assert int(mirrored.optimizer.iterations.numpy()) == 3
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _train_autoencoder(strategy, digits, weights=None):
    with strategy.scope():
        # A large latent noise: the noise, not the data, decides where the weights go.
        model = tiny_autoencoder(latent_noise=0.5, seed=3, optimizer=keras.optimizers.SGD(1e-3))
        if weights is not None:
            model.set_weights(weights)
    model.fit(array_dataset(digits, 8, seed=1), steps_per_epoch=2, epochs=1, verbose=0)
    return model


def test_autoencoder_noise_is_the_same_on_one_or_two_replicas(digits16):
    keras.utils.set_random_seed(0)  # the initial weights; otherwise whatever earlier tests left in the global RNG
    weights = tiny_autoencoder().get_weights()
    single = _train_autoencoder(tf.distribute.get_strategy(), digits16[:16], weights)
    mirrored = _train_autoencoder(mirrored_strategy(["/cpu:0", "/cpu:1"]), digits16[:16], weights)
    moved = [np.abs(a - b).max() for a, b in zip(weights, single.get_weights(), strict=True)]
    assert max(moved) > 1e-4  # the two steps trained
    # Another replica's noise would move the weights elsewhere, by as much as
    # they moved. What remains is round-off of the all-reduced gradients and
    # batch statistics (loss factor 1000): about 1e-7 here, and once, from
    # other initial weights, 1.1e-5 in a kernel that moved about 1e-3.
    for a, b, step in zip(single.get_weights(), mirrored.get_weights(), moved, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=0.05 * step + 1e-6)


def test_an_in_memory_dataset_gives_the_same_batches_under_a_strategy():
    images = np.linspace(-1.0, 1.0, 24 * 4 * 4).reshape(24, 4, 4, 1).astype(np.float32)
    alone = [batch.numpy() for batch in array_dataset(images, 8, seed=5).take(6)]  # two epochs
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    # The strategy copies the pipeline: a Dataset.shuffle seed would be re-derived, a permutation is not.
    distributed = strategy.experimental_distribute_dataset(array_dataset(images, 8, seed=5))
    iterator = iter(distributed)
    batches = [np.concatenate(strategy.experimental_local_results(next(iterator))) for _ in range(6)]
    for got, expected in zip(batches, alone, strict=True):
        np.testing.assert_array_equal(got, expected)
    # Each epoch is a permutation of the images: every image once.
    first_epoch = np.concatenate(alone[:3])
    np.testing.assert_array_equal(np.sort(first_epoch.ravel()), np.sort(images.ravel()))
    assert not np.array_equal(first_epoch, images)


def test_make_strategy_kinds_and_errors(monkeypatch):
    assert isinstance(make_strategy("cpu"), tf.distribute.OneDeviceStrategy)
    assert make_strategy("mirrored").num_replicas_in_sync == 2  # the two logical CPUs
    assert make_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="strategy='gpu'"):
        make_strategy("gpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG, which is not set"):
        make_strategy("multi_worker")


def _free_ports(n):
    """``n`` ports that were free a moment ago: another process may take one before a worker binds it."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# What a worker prints when its port was taken between _free_ports and its gRPC server's bind.
PORT_TAKEN = "Could not start gRPC server"
ATTEMPTS = 3


def _train_two_workers(directory):
    """``hat-ebm train`` of ``mw.yaml`` in ``directory`` by two worker processes: their outputs, or None.

    None when a worker could not bind its port (another process took it):
    the other worker, which would wait for its peer, is killed. Each
    worker's output is read in a thread of its own, so that the first to end
    is seen at once, whichever it is.
    """
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    env = dict(os.environ)  # PYTHONPATH included: a worktree's own code (tests/helpers.py, _env)
    procs = [
        subprocess.Popen(
            [str(HAT_EBM), "train", "--config", "mw.yaml", "--run-dir", "run"],
            cwd=directory,
            env={
                **env,
                "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
        futures = [pool.submit(lambda p: p.communicate(timeout=600)[0], p) for p in procs]
        pending = set(futures)
        while pending and all(p.returncode in (None, 0) for p in procs):
            _, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for proc in procs:  # a worker failed: its peer would wait for it
            if proc.returncode is None:
                proc.kill()
    texts = [future.result() for future in futures]
    failed = [text for proc, text in zip(procs, texts, strict=True) if proc.returncode != 0]
    if failed and any(PORT_TAKEN in text for text in failed):
        return None
    assert not failed, "\n".join(text[-3000:] for text in texts)
    return texts


def test_multi_worker_two_processes_end_with_identical_weights(tmp_path):
    # Digits from an array file: the same pipeline, without the digits quality figures of a `digits` source.
    config = array_config(tmp_path, steps=3, steps_per_epoch=3, batch_size=8, strategy="multi_worker")
    start = time.time()
    # The ports are free when chosen, not reserved: the other test worker's processes may take one first. That
    # failure is the worker's own message, and the whole run starts again on fresh ports.
    for attempt in range(ATTEMPTS):
        directory = tmp_path / f"attempt{attempt}"
        directory.mkdir()
        (directory / "mw.yaml").write_text(yaml.safe_dump(config))
        if _train_two_workers(directory) is not None:
            break
    else:
        pytest.fail(f"in {ATTEMPTS} attempts, another process took a worker's port each time")
    print(f"multi-worker wall time: {time.time() - start:.1f} s ({attempt + 1} attempts)")
    import hat_ebm_tf

    hat_ebm_tf.register_keras_classes()

    chief = keras.saving.load_model(directory / "run" / "model.keras")
    other = keras.saving.load_model(directory / "run" / "workers" / "1" / "model.keras")
    assert int(chief.optimizer.iterations.numpy()) == 3
    for a, b in zip(chief.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (directory / "run" / "samples.npz").is_file() and not (
        directory / "run" / "workers" / "1" / "samples.npz"
    ).exists()
