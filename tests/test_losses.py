import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.losses import generator_regression_loss, maximum_likelihood_loss


def test_maximum_likelihood_loss_value_and_temperature():
    loss, diff = maximum_likelihood_loss(np.array([[1.0], [3.0]]), np.array([5.0, 7.0, 9.0]), temperature=0.5)
    assert float(diff) == pytest.approx(2.0 - 7.0)
    assert float(loss) == pytest.approx(-10.0)


def test_generator_regression_loss_value():
    generated = np.zeros((2, 2, 2, 1), "float32")
    targets = np.ones((2, 2, 2, 1), "float32") * 0.5
    assert float(generator_regression_loss(generated, targets, factor=1000.0)) == pytest.approx(250.0)


def test_drift_penalty_is_quadratic_about_its_target():
    from hat_ebm_tf.losses import drift_penalty

    assert float(drift_penalty(tf.constant(0.5), 0.25, 2.0)) == pytest.approx(0.125)
    assert float(drift_penalty(tf.constant(0.0), 0.25, 2.0)) == pytest.approx(0.125)
    assert float(drift_penalty(tf.constant(0.25), 0.25, 2.0)) == 0.0
