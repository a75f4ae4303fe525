"""pytest set-up: the order of the test files, and the plugin of shared fixtures.

The fixtures that need TensorFlow live in tests/shared_fixtures.py, loaded
only in the processes that run tests: pytest-xdist's controller never imports
TensorFlow, which would keep the workers from starting for about 7 s.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread per op in every TensorFlow process of the run (the commands the tests
# start inherit it): the run's two workers share the machine's cores, and TF's
# default of a thread per core in each process oversubscribes them.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

# The test files that start first, longest first (wall seconds of each file in
# one idle run), so that the two workers end together; the other files follow
# in alphabetical order. pyproject.toml passes --no-loadscope-reorder, without
# which pytest-xdist orders files by their number of tests instead.
# test_main comes second because it builds the session's tiny run (and the
# digits classifier), which test_cli, test_export and test_longrun read later
# instead of waiting on it.
LONGEST_FIRST = (
    "test_train.py",  # 160
    "test_main.py",  # 48
    "test_benchmarks.py",  # 99
    "test_mala.py",  # 88
    "test_model.py",  # 73
    "test_signatures.py",  # 66
    "test_distribute.py",  # 65
    "test_reliability.py",  # 47
    "test_export.py",  # 47
    "test_exit_codes.py",  # 45 (67 on a loaded machine)
    "test_savedmodel.py",  # 46
    "test_longrun.py",  # 45
    "test_docs.py",  # 30: it runs the README's Python example
    "test_tensorboard_log.py",  # 34
    "test_calibration.py",  # 33
    "test_callbacks.py",  # 29
    "test_reference_import.py",  # 21
    "test_cli.py",  # 18
    "test_layout.py",  # 16
    "test_fid.py",  # 16
    "test_data.py",  # 15
    "test_sampler.py",  # 15
    "test_autoencoder.py",  # 11
    "test_quality_report.py",  # 10
)


def pytest_configure(config):
    # A worker has ``workerinput``; the controller of `-n 2` runs no tests.
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", default=None):
        config.pluginmanager.import_plugin("tests.shared_fixtures")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: the rest keep their order
