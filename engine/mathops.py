"""Small array helpers shared by layers (one body for numpy and cupy)."""
from __future__ import annotations


def accumulate_matmul(blob, left, right) -> None:
    """``blob.diff += left @ right`` (Caffe's gemm with beta=1), without a temporary
    when the diff is known to be zero."""
    xp = blob.xp
    target = blob.diff.reshape(left.shape[0], right.shape[1])
    if blob.diff_is_clear:
        xp.matmul(left, right, out=target)
        blob.diff_is_clear = False
    else:
        target += left @ right


def accumulate_sum_rows(blob, matrix) -> None:
    """``blob.diff += 1^T . matrix`` (Caffe's gemv with the ones vector)."""
    if blob.diff_is_clear:
        matrix.sum(axis=0, out=blob.diff)
        blob.diff_is_clear = False
    else:
        blob.diff += matrix.sum(axis=0)
