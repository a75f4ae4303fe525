"""The benchmark script: a --tiny smoke run of every section, and the `hat-ebm bench` command."""

import argparse
import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.benchmarks.flags import SECTIONS, add_arguments, section_list
from hat_ebm_tf.benchmarks.flops import count_flops, input_gradient
from hat_ebm_tf.benchmarks.reference_rule import (
    reference_generator,
    reference_hat,
    reference_langevin,
    reference_step_function,
)
from hat_ebm_tf.choices import GENERATOR_TABLE
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder
from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.sampler import initial_state, langevin
from hat_ebm_tf.sampler_config import LangevinConfig
from tests.helpers import main_in

HAT_EBM = Path(sys.executable).parent / "hat-ebm"
FLAGS = ("--image-size", "--width", "--batch", "--steps", "--repeats", "--warmup", "--out", "--sections")
FLAGS += ("--mixed-precision", "--tiny")


def clean_env():
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``(table, JSON document)`` of ``hat-ebm bench --tiny``, run in this process.

    The memory section still starts its own processes; ``python -m
    hat_ebm_tf.benchmarks`` and the installed ``hat-ebm bench`` start fresh in
    the ``--help`` tests below.
    """
    root = tmp_path_factory.mktemp("bench")
    table = main_in(root, "bench", "--tiny", "--out", "b.json")
    return table, json.loads((root / "b.json").read_text())


def test_table_has_every_section_and_says_how_many_repeats(tiny_run):
    table, _ = tiny_run
    for name in SECTIONS:
        assert f"[{name}]" in table, name
    assert "medians of 2 repeats after 1 warm-up calls" in table
    assert "synthesis: achieved" in table and "peak ratio 50 / 5 steps" in table


def test_json_records_settings_machine_and_every_section(tiny_run):
    _, document = tiny_run
    assert set(document["results"]) == set(SECTIONS)
    settings = document["settings"]
    assert settings["tiny"] and (settings["image_size"], settings["width"], settings["batch"]) == (16, 16, 4)
    machine = document["machine"]
    assert machine["tensorflow"] and machine["keras"] and machine["cpu_model"] and machine["cpu_count"] >= 1
    assert datetime.datetime.fromisoformat(document["timestamp"]).tzinfo is not None
    assert {row["status"] for row in document["targets"].values()} <= {"PASS", "MISS"}


def test_sampler_rates_are_positive_and_consistent(tiny_run):
    _, document = tiny_run
    langevin = document["results"]["langevin"]
    for form in ("synthesis", "joint"):
        timing = langevin["float32"][form]
        assert positive(timing["steps_per_s"]) and len(timing["times"]) == 2
        assert timing["images_steps_per_s"] == pytest.approx(4 * timing["steps_per_s"])
        assert timing["steps_per_s"] == pytest.approx(2 / timing["seconds"])
    mixed = langevin["mixed"]
    assert mixed["reason"]
    if mixed["policy"] is not None:
        assert positive(mixed["synthesis"]["steps_per_s"]) and positive(mixed["joint"]["steps_per_s"])
    jit = document["results"]["jit"]
    assert jit["off"] == langevin["float32"]["synthesis"]
    # XLA compiles the sampler on CPU (the README's figures): a failure is recorded in the report, and fails here.
    assert "error" not in jit["on"], jit["on"]["error"]
    assert positive(jit["on"]["steps_per_s"]) and positive(jit["speedup"])


def test_flops_and_achieved_rates(tiny_run):
    _, document = tiny_run
    flops = document["results"]["flops"]
    assert positive(flops["matmul"]["gflops_per_s"])
    synthesis, joint = flops["synthesis"], flops["joint"]
    for form in (synthesis, joint):
        assert isinstance(form["flops_per_step"], int) and positive(form["flops_per_step"])
        assert positive(form["achieved_gflops_per_s"]) and positive(form["ratio_to_matmul"])
    # The joint step adds a generator pass, its backward pass and a second hat gradient.
    assert joint["flops_per_step"] > 2 * synthesis["flops_per_step"]


def test_synthesis_loop_evaluates_no_generator(tiny_run):
    _, document = tiny_run
    counts = document["results"]["flops"]["generator_in_loop"]
    assert counts["synthesis"] == {
        "calls_per_step_inside_loop": 0,
        "calls_outside_loop": 1,
        "generator_ops_in_loop_body": 0,
    }
    # The same check finds the generator in the joint loop, so it can fail.
    assert counts["joint"]["calls_per_step_inside_loop"] >= 1 and counts["joint"]["generator_ops_in_loop_body"] > 0
    targets = document["targets"]
    assert targets["generator_calls_in_synthesis_loop"]["status"] == "PASS"
    assert targets["generator_ops_in_synthesis_loop_body"]["status"] == "PASS"


def test_training_rates(tiny_run):
    _, document = tiny_run
    train = document["results"]["train"]
    assert set(train) == {"digits", "cifar10_synthesis"}
    for figures in train.values():
        assert positive(figures["steps_per_s"]) and len(figures["times"]) == 4
        assert figures["langevin_steps_per_s"] == pytest.approx(figures["steps_per_s"] * figures["sampler_steps"])
    assert "random" in train["cifar10_synthesis"]["data"]


def test_op_profile_names_the_conv_kernels_and_their_rates(tiny_run):
    _, document = tiny_run
    ops = document["results"]["ops"]
    assert positive(ops["wall_ms"]) and positive(ops["op_ms_total"])
    assert sum(op["share"] for op in ops["ops"]) == pytest.approx(1.0)
    assert [op["ms"] for op in ops["ops"]] == sorted((op["ms"] for op in ops["ops"]), reverse=True)
    convs = [op for op in ops["ops"] if "Conv2D" in op["op"]]
    assert convs and all(positive(op["gflops_per_s"]) for op in convs)


def test_memory_figures(tiny_run):
    _, document = tiny_run
    memory = document["results"]["memory"]
    assert (memory["long"]["steps"], memory["short"]["steps"]) == (50, 5)
    for chain in (memory["long"], memory["short"]):
        assert positive(chain["peak_rss_mib"]) and positive(chain["rss_before_mib"])
        assert chain["peak_rss_mib"] >= chain["rss_before_mib"]
    assert memory["peak_ratio"] == pytest.approx(memory["long"]["peak_rss_mib"] / memory["short"]["peak_rss_mib"])


def test_hat_ebm_bench_help_lists_the_flags(tmp_path):
    if not HAT_EBM.exists():
        pytest.fail(f"{HAT_EBM} is not installed: run `pip install .`")
    result = subprocess.run(
        [str(HAT_EBM), "bench", "--help"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for flag in FLAGS:
        assert flag in result.stdout, flag


def test_module_help_lists_the_flags_without_importing_tensorflow(tmp_path):
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['hat_ebm_tf.benchmarks', '--help']\n"
        "try:\n"
        "    runpy.run_module('hat_ebm_tf.benchmarks', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage: python -m hat_ebm_tf.benchmarks" in result.stdout
    for flag in FLAGS:
        assert flag in result.stdout, flag
    assert result.stdout.rstrip().endswith("tensorflow imported: False")


def test_sections_flag_orders_and_rejects_names():
    assert section_list("memory, langevin") == ("langevin", "memory")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown sections"):
        section_list("langevin,speed")
    assert parse().sections == SECTIONS


def test_xla_failure_is_recorded_not_raised(monkeypatch):
    from hat_ebm_tf.benchmarks import sampler_speed

    def fail(*args, **kwargs):
        raise RuntimeError("XLA compilation failed\ndetails")

    monkeypatch.setattr(sampler_speed, "build_networks", lambda settings: (None, None))
    monkeypatch.setattr(sampler_speed, "time_sampler", fail)
    result = sampler_speed.jit_comparison(SimpleNamespace(steps=2), {"steps_per_s": 1.0})
    assert result["on"] == {"error": "RuntimeError: XLA compilation failed"} and result["speedup"] is None


def test_memory_child_failure_reports_its_stderr():
    from hat_ebm_tf.benchmarks.common import Settings
    from hat_ebm_tf.benchmarks.memory import run_child

    settings = Settings.from_args(parse("--tiny", "--image-size", "15"))
    with pytest.raises(RuntimeError, match=r"exited with 1(.|\n)*unsupported image_size=15"):
        run_child(settings, 2)


def _randomise(net, rng):
    """Give every variable (biases, batch-norm statistics) a random value, so that each one matters."""
    for weight in net.weights:
        values = rng.uniform(0.5, 1.5, weight.shape) if "variance" in weight.path else rng.normal(0, 0.3, weight.shape)
        weight.assign(values.astype("float32"))
    return net


@pytest.mark.parametrize("size", sorted(GENERATOR_TABLE))
def test_our_networks_compute_the_reference_layout(size, rng):
    # Our generator folds batch norm into conv_1 and runs shortcut convs before
    # the upsampling; our hat folds its pools into conv_2. Same functions.
    gen = _randomise(Generator(size, 16, 3, latent_dim=8), rng)
    z = rng.standard_normal((2, 8)).astype("float32")
    want = reference_generator(gen, z)
    np.testing.assert_allclose(gen(z, training=False), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    hat = _randomise(HatNetwork(size, 16, 3), rng)
    x = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    want = reference_hat(hat, x)
    np.testing.assert_allclose(hat(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_retrofit_decoder_computes_the_reference_layout(rng):
    dec = _randomise(RetrofitDecoder(width=8, latent_shape=(8, 8, 1)), rng)
    z = rng.standard_normal((2, 8, 8, 1)).astype("float32")
    want = reference_generator(dec, z)
    np.testing.assert_allclose(dec(z, training=False), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("joint", [False, True])
def test_reference_rule_runs_the_same_chains_as_our_sampler(joint, rng):
    hat, gen = _randomise(HatNetwork(16, 8, 3), rng), _randomise(Generator(16, 8, 3, latent_dim=8), rng)
    config = LangevinConfig.for_form(joint, num_steps=3, step_size=0.05, temperature=1e-2, max_residual_norm=1.0)
    if joint:
        config = dataclasses.replace(config, latent_step_size=0.05, tau=1.0)
    seeds = row_seeds(3, 2)
    z, y = initial_state(seeds, (8,), (16, 16, 3), dataclasses.replace(config, init_scale_residual=0.1))
    ours = langevin(hat, gen, z, y, seeds, config)
    reference = reference_langevin(hat, gen, z, y, seeds, config)
    for got, want in zip(ours, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(float(np.abs(want).max()), 1e-6))
    assert (float(ours.grad_norm_latent) > 0) == joint


def test_reference_section_times_both_samplers(tiny_run):
    table, document = tiny_run
    for form in ("synthesis", "joint"):
        figures = document["results"]["reference"][form]
        assert [len(figures[name]["times"]) for name in ("ours", "ours_unfolded_generator", "reference")] == [2] * 3
        assert positive(figures["fold_speedup"])
        # The reference rule does all our arithmetic and more: it re-runs G (and, joint, G and H once more).
        assert figures["flop_ratio"] > 1 and f"{form}: FLOP ratio" in table
        assert positive(figures["speedup"]) and figures["goal"] == {"synthesis": 3.0, "joint": 2.0}[form]
        assert document["targets"][f"{form}_speedup_over_reference"]["status"] in ("PASS", "MISS")
        assert f"{form}: speedup" in table
    flags = document["machine"]["cpu_flags"]
    assert f"vector flags found: {', '.join(flags) or 'none of the listed ones'}" in table


def test_reference_step_flops_add_one_generator_pass_to_the_hat_gradient():
    # The reference's residual step recomputes G(z): its FLOPs are exactly those of the hat's input
    # gradient at a given G(z), plus one forward pass of G, each counted on its own.
    settings = SimpleNamespace(batch=2, image_shape=(16, 16, 3), latent_dim=8)
    hat, gen = HatNetwork(16, 8, 3), Generator(16, 8, 3, latent_dim=8)
    image, latent = tf.TensorSpec((2, 16, 16, 3)), tf.TensorSpec((2, 8))
    hat_gradient = tf.function(lambda base, y: input_gradient(lambda v: reference_hat(hat, base + v), y))
    generator_pass = tf.function(lambda z: reference_generator(gen, z))
    step = count_flops(reference_step_function(hat, gen, settings, joint=False))
    parts = count_flops(hat_gradient.get_concrete_function(image, image))
    parts += count_flops(generator_pass.get_concrete_function(latent))
    assert step == parts
