"""argparse value types (``hat_ebm_tf.argtypes``): the values each accepts, and the message for the rest."""

import argparse

import pytest

from hat_ebm_tf.argtypes import float_or_none, non_negative_int, positive_int, probability


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (float_or_none, "none", None),
        (float_or_none, "None", None),
        (float_or_none, "0.5", 0.5),
        (float_or_none, "-2", -2.0),
        (positive_int, "1", 1),
        (positive_int, "64", 64),
        (non_negative_int, "0", 0),
        (non_negative_int, "3", 3),
        (probability, "0.05", 0.05),
        (probability, "0.999", 0.999),
    ],
)
def test_good_values_are_parsed(kind, text, value):
    assert kind(text) == value and type(kind(text)) is type(value)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (positive_int, "0", "expected a positive integer, got 0"),
        (positive_int, "-3", "expected a positive integer, got -3"),
        (non_negative_int, "-1", "expected an integer >= 0, got -1"),
        (probability, "0", r"expected a number in \(0, 1\), got 0"),
        (probability, "1", r"expected a number in \(0, 1\), got 1"),
        (probability, "nan", r"expected a number in \(0, 1\), got nan"),
    ],
)
def test_values_out_of_range_are_named(kind, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        kind(text)


@pytest.mark.parametrize("kind", [float_or_none, positive_int, non_negative_int, probability])
def test_a_flag_with_a_bad_value_exits_naming_the_flag(kind, capsys):
    # argparse turns the ValueError of a text that is not a number of the kind into exit code 2 and a message.
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--x", type=kind)
    for text in ("abc", "1.5") if kind in (positive_int, non_negative_int) else ("abc",):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["--x", text])
        assert info.value.code == 2
        assert f"argument --x: invalid {kind.__name__} value: '{text}'" in capsys.readouterr().err
    assert parser.parse_args([]).x is None
