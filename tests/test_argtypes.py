"""argparse value types (``hat_ebm_tf.argtypes``): the values each accepts, and the message for the rest."""

import argparse

import pytest

from hat_ebm_tf.argtypes import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_float_or_none,
    positive_int,
    positive_int64,
    probability,
    serving_name,
)


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (positive_float_or_none, "none", None),
        (positive_float_or_none, "None", None),
        (positive_float_or_none, "0.5", 0.5),
        (positive_float, "1e-30", 1e-30),
        (positive_float, "4", 4.0),
        (non_negative_float, "0", 0.0),
        (non_negative_float, "2.5", 2.5),
        (positive_int64, "9223372036854775807", 2**63 - 1),
        (serving_name, "digits_v2.1-b", "digits_v2.1-b"),
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
        (positive_float, "nan", r"nan must be > 0 and finite"),
        (positive_float, "-1", r"-1 must be > 0 and finite"),
        (positive_float, "inf", r"inf must be > 0 and finite"),
        (positive_float, "1e-50", r"1e-50 vanishes in float32, which TensorFlow computes in"),
        (positive_float, "1e39", r"1e39 is infinite in float32"),
        (positive_float_or_none, "-2", r"-2 must be > 0 and finite"),
        (non_negative_float, "-0.5", r"-0.5 must be >= 0 and finite"),
        (non_negative_float, "1e-300", r"1e-300 vanishes in float32"),
        (positive_int64, "9223372036854775808", r"expected an integer in \[1, 9223372036854775807\] \(int64\)"),
        (positive_int64, "0", r"expected an integer in \[1,"),
        *[
            (serving_name, name, r"a model name is ASCII letters, digits, '_', '\.' or '-', not starting")
            for name in ("", "../evil", "a/b", "dïgits", "my model", ".hidden", "-x")
        ],
    ],
)
def test_values_out_of_range_are_named(kind, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        kind(text)


@pytest.mark.parametrize(
    "kind", [positive_float_or_none, positive_float, non_negative_float, positive_int, positive_int64, probability]
)
def test_a_flag_with_a_bad_value_exits_naming_the_flag(kind, capsys):
    # argparse turns the ValueError of a text that is not a number of the kind into exit code 2 and a message.
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--x", type=kind)
    for text in ("abc", "1.5") if kind in (positive_int, positive_int64, non_negative_int) else ("abc",):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["--x", text])
        assert info.value.code == 2
        assert f"argument --x: invalid {kind.__name__} value: '{text}'" in capsys.readouterr().err
    assert parser.parse_args([]).x is None
