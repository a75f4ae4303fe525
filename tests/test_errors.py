"""The library's error types (``hat_ebm_tf.errors``): callers catching the built-in types keep working."""

import signal

import pytest

from hat_ebm_tf import errors


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.ConfigError, ValueError),
        (errors.LimitError, ValueError),
        (errors.DataError, ValueError),
        (errors.ModelFileError, ValueError),
        (errors.RunDirError, ValueError),
        (errors.TrainingDiverged, RuntimeError),
    ],
    ids=lambda v: v.__name__,
)
def test_each_error_is_a_hat_ebm_error_and_its_builtin_type(error, builtin):
    with pytest.raises(builtin, match="the message") as info:
        raise error("the message")
    assert isinstance(info.value, errors.HatEBMError)


def test_a_limit_is_a_config_error():
    # `hat-ebm` gives both exit code 2; the limit's message says how to raise it.
    assert issubclass(errors.LimitError, errors.ConfigError)


def test_an_interruption_keeps_its_signal_and_is_no_value_error():
    interrupted = errors.TrainingInterrupted("stopped at step 3", signal.SIGTERM)
    assert interrupted.signum == 15 and type(interrupted.signum) is int and str(interrupted) == "stopped at step 3"
    assert not isinstance(interrupted, (ValueError, RuntimeError))
