import pytest

from hat_ebm_tf.choices import GENERATOR_TABLE, HAT_TABLE


def test_both_networks_offer_the_same_image_sizes():
    assert sorted(HAT_TABLE) == sorted(GENERATOR_TABLE) == [16, 32, 64, 128]


@pytest.mark.parametrize("size", sorted(GENERATOR_TABLE))
def test_the_generator_doubles_its_4x4_base_up_to_the_image_size(size):
    assert 4 * 2 ** len(GENERATOR_TABLE[size]) == size


@pytest.mark.parametrize("size", sorted(HAT_TABLE))
def test_the_hat_network_starts_with_a_stem_and_keeps_a_spatial_map(size):
    blocks = HAT_TABLE[size]
    assert len(blocks) >= 3 and all(divisor >= 1 for divisor, _ in blocks)
    assert size // 2 ** sum(down for _, down in blocks) >= 2  # the last block still sees at least 2×2
