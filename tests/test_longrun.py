"""hat_ebm_tf.evaluation.longrun and `hat-ebm longrun`: a chain run in graph pieces, its records, figures and JSON."""

import dataclasses
import json

import numpy as np
import pytest

from hat_ebm_tf.cli.main import main
from hat_ebm_tf.data import model_range_to_uint8
from hat_ebm_tf.evaluation.longrun import long_run, mark_multiples, strip_steps
from tests.helpers import JOINT_SAMPLER, TINY_SAMPLER, tiny_model


@pytest.mark.parametrize("mode", ["synthesis", "refine"])
@pytest.mark.parametrize("metropolis", [False, True])
def test_long_run_is_the_chain_of_one_sampler_call(mode, metropolis):
    config = dataclasses.replace(TINY_SAMPLER if mode == "synthesis" else JOINT_SAMPLER, metropolis=metropolis)
    model = tiny_model(mode=mode, sampler=config)
    seen = []
    run = long_run(
        model, config, steps=7, every=3, chains=5, seed=2, strip_chains=2, num_strips=3, progress=seen.append
    )
    assert seen == [3, 6, 7] and run.steps.tolist() == [0, 3, 6, 7]
    assert run.energies.shape == run.saturation.shape == (4, 5) and run.acceptance_res.shape == (3, 5)
    # The pieces continue one chain: the last record is `sample` with 7 steps.
    images = model.sample(5, seed=2, config=dataclasses.replace(config, num_steps=7))
    np.testing.assert_allclose(run.energies[-1], model.energy(images), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run.strips[-1], np.asarray(model_range_to_uint8(images[:2])), atol=1)
    assert run.strip_steps[0] == 0 and run.strip_steps[-1] == 7 and run.strips.shape[:2] == (len(run.strip_steps), 2)
    if metropolis:
        assert np.all((run.acceptance_res >= 0) & (run.acceptance_res <= 1))
    else:
        assert np.all(run.acceptance_res == 1)


def test_strip_steps_are_log_spaced_records():
    assert strip_steps(10000, 100, 8) == [0, 100, 200, 500, 1000, 2200, 4600, 10000]
    assert strip_steps(10000, 100, 3, extra=[1000, 150]) == [0, 100, 200, 1000, 10000]
    assert mark_multiples(10) == {"10× training": 100, "100× training": 1000}


def test_bad_long_run_settings_are_named():
    model = tiny_model()
    with pytest.raises(ValueError, match="every=0 must be a positive integer"):
        long_run(model, TINY_SAMPLER, steps=5, every=0)


def test_longrun_command_writes_figures_and_json(tiny_run):
    root, _ = tiny_run
    out = root / "long"
    argv = ["longrun", str(root / "run"), "--steps", "6", "--every", "2", "--chains", "4", "--out", str(out)]
    main([*argv, "--metropolis", "--temperature", "1", "--data-num", "20"])
    record = json.loads((out / "longrun.json").read_text())
    assert {p.name for p in out.iterdir()} == {"longrun.json", "energy.png", "strips.png", "acceptance.png"}
    assert record["steps"] == [0, 2, 4, 6] and record["total_steps"] == 6 and record["sampler"]["metropolis"]
    assert record["sampler"]["temperature"] == 1.0 and record["data_energy"]["num"] == 20
    assert len(record["chains"]["energies"]) == 4 and all(0 <= a <= 1 for a in record["acceptance_res_mean"])
    assert record["marks"] == {"10× training": 20, "100× training": 200}  # the tiny run trains with 2-step chains
    with pytest.raises(SystemExit, match="the file exists; pass --overwrite"):
        main(argv)
    main([*argv, "--overwrite"])  # unadjusted: no acceptance figure
    assert json.loads((out / "longrun.json").read_text())["sampler"]["metropolis"] is False
    assert not (out / "acceptance.png").exists()
