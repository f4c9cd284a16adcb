import numpy as np
import pytest

from shipcam.train.data.rle import rle_decode, rle_encode


def test_column_major_one_based_closed_form():
    # 4 rows x 5 columns; pixel (r, c) has Kaggle number c * 4 + r + 1.
    m = np.zeros((4, 5), bool)
    m[1:3, 1] = True  # numbers 6, 7
    m[0, 4] = m[3, 4] = True  # 17 and 20
    assert rle_encode(m) == "6 2 17 1 20 1"


def test_run_continues_down_then_across():
    m = np.zeros((3, 3), bool)
    m[2, 0] = m[0, 1] = True  # consecutive in column-major order: 3 and 4
    assert rle_encode(m) == "3 2"


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 64), (31, 17)])
def test_round_trip_random_masks(shape, rng):
    for density in (0.0, 0.1, 0.5, 1.0):
        m = rng.random(shape) < density
        assert np.array_equal(rle_decode(rle_encode(m), shape), m)


@pytest.mark.parametrize("empty", ["", "  ", None, float("nan")])
def test_empty_cells_decode_to_no_ship(empty):
    assert not rle_decode(empty, (8, 8)).any()


@pytest.mark.parametrize("bad", ["1 2 3", "a b", "0 4", "60 10"])
def test_malformed_rle_is_refused(bad):
    with pytest.raises(ValueError):
        rle_decode(bad, (8, 8))
