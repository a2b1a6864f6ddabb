"""Blob: shape, count, reshape, data/diff pairs, sharing, devices."""
import numpy
import pytest

from engine import Blob


def test_new_blob_is_float32_zeros_of_its_shape():
    blob = Blob((2, 3, 4))
    assert blob.shape == (2, 3, 4)
    assert blob.data.dtype == numpy.float32 and blob.diff.dtype == numpy.float32
    assert not blob.data.any() and not blob.diff.any()
    assert blob.num_axes == 3


@pytest.mark.parametrize("start,end,expected", [
    (0, None, 2 * 3 * 4 * 5), (1, None, 3 * 4 * 5), (0, 2, 2 * 3), (2, 3, 4), (4, None, 1), (1, 1, 1)])
def test_count_is_product_of_axes_in_range(start, end, expected):
    assert Blob((2, 3, 4, 5)).count(start, end) == expected


def test_reshape_changes_shape_and_keeps_values_only_when_shape_unchanged():
    blob = Blob((2, 3))
    blob.data[...] = 7.0
    blob.reshape(2, 3)
    assert (blob.data == 7.0).all()
    blob.reshape((3, 2, 1))
    assert blob.shape == (3, 2, 1) and blob.count() == 6
    assert not blob.data.any()


def test_reshape_rejects_negative_dimensions():
    with pytest.raises(ValueError, match="negative"):
        Blob((2, -1))


def test_data_and_diff_are_separate_arrays():
    blob = Blob((3,))
    blob.data = [1, 2, 3]
    blob.diff = [4, 5, 6]
    assert blob.data.tolist() == [1, 2, 3]
    assert blob.diff.tolist() == [4, 5, 6]
    assert not blob.diff_is_clear
    blob.clear_diff()
    assert not blob.diff.any() and blob.diff_is_clear


def test_share_data_shares_memory_but_not_diff():
    a, b = Blob((2, 2)), Blob((2, 2))
    b.share_data(a)
    a.data[0, 0] = 5.0
    assert b.data[0, 0] == 5.0
    b.diff[...] = 1.0
    assert not a.diff.any()


def test_canonical_axis_accepts_negative_axes_and_rejects_out_of_range():
    blob = Blob((2, 3, 4))
    assert blob.canonical_axis(-1) == 2
    assert blob.canonical_axis(1) == 1
    with pytest.raises(IndexError, match="axis 3"):
        blob.canonical_axis(3)


def test_to_cpu_keeps_values():
    blob = Blob((2,))
    blob.data[...] = [1.5, -2.5]
    assert blob.to("cpu") is blob
    assert blob.data.tolist() == [1.5, -2.5]
    assert blob.xp is numpy


def test_float64_blob():
    blob = Blob((2,), dtype=numpy.float64)
    assert blob.data.dtype == numpy.float64
