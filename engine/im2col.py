"""im2col / col2im on strided views: the matrix form of a 2-D convolution.

One body serves numpy and cupy (the array module comes from the input array).

Layout. For an input batch ``x`` of shape ``N x C x H x W`` and a kernel
``kh x kw`` the column matrix has Caffe's rows, ``(c * kh + i) * kw + j``,
and one column per output pixel of every image: shape
``(C * kh * kw) x (N * Ho * Wo)``, stored as ``C x kh x kw x N x Ho x Wo``.
The columns of image ``n`` are the block ``[:, n * Ho * Wo : (n + 1) * Ho * Wo]``,
which is exactly Caffe's per-image col buffer, so the N per-image GEMMs of
Caffe's loop become one GEMM over the side-by-side blocks (the same sums).
"""
from __future__ import annotations

from typing import Sequence

from .backend import get_array_module

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Caffe's convolution output length: ``(size + 2*pad - (dilation*(kernel-1)+1)) // stride + 1``."""
    extent = dilation * (kernel - 1) + 1
    return (size + 2 * pad - extent) // stride + 1


def _as_strided(xp, array, shape: Sequence[int], strides: Sequence[int]):
    return xp.lib.stride_tricks.as_strided(array, shape=tuple(shape), strides=tuple(strides))


def pad_images(x, pad: Pair, fill: float = 0.0, size: Pair | None = None):
    """A copy of ``x`` (``... x H x W``) with ``pad`` rows/columns of ``fill`` before the image
    and enough after it to reach ``size`` (default: ``pad`` after as well)."""
    xp = get_array_module(x)
    height, width = x.shape[-2:]
    total_h = size[0] if size else height + 2 * pad[0]
    total_w = size[1] if size else width + 2 * pad[1]
    if pad == (0, 0) and (total_h, total_w) == (height, width):
        return x
    out = xp.full(x.shape[:-2] + (total_h, total_w), fill, dtype=x.dtype)
    out[..., pad[0]:pad[0] + height, pad[1]:pad[1] + width] = x
    return out


def window_view(padded, kernel: Pair, stride: Pair, dilation: Pair, out_size: Pair):
    """A read-only strided view ``N x C x Ho x Wo x kh x kw`` of the windows of ``padded``.

    ``padded`` must already hold every pixel a window reads.
    """
    xp = get_array_module(padded)
    s_n, s_c, s_h, s_w = padded.strides
    shape = padded.shape[:2] + tuple(out_size) + tuple(kernel)
    strides = (s_n, s_c, stride[0] * s_h, stride[1] * s_w, dilation[0] * s_h, dilation[1] * s_w)
    return _as_strided(xp, padded, shape, strides)


def im2col(x, kernel: Pair, stride: Pair, pad: Pair, dilation: Pair, out=None):
    """The column matrix of ``x`` (``N x C x H x W``), shape ``C x kh x kw x N x Ho x Wo``.

    ``out`` (optional) is a buffer of that shape to fill. Padded pixels are 0.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_size = (conv_output_size(h, kernel[0], stride[0], pad[0], dilation[0]),
                conv_output_size(w, kernel[1], stride[1], pad[1], dilation[1]))
    windows = window_view(pad_images(x, pad), kernel, stride, dilation, out_size)
    columns = windows.transpose(1, 4, 5, 0, 2, 3)  # C, kh, kw, N, Ho, Wo
    if out is None:
        out = xp.empty(columns.shape, dtype=x.dtype)
    out[...] = columns
    return out


def col2im(col, image_shape: Sequence[int], kernel: Pair, stride: Pair, pad: Pair, dilation: Pair,
           out=None):
    """Sum the columns back onto the image (the adjoint of :func:`im2col`).

    ``col`` has the layout ``C x kh x kw x N x Ho x Wo``; the result (written
    into ``out`` when given) has ``image_shape`` = ``N x C x H x W``. One strided
    add per kernel offset: no Python loop over pixels or images.
    """
    xp = get_array_module(col)
    n, c, h, w = image_shape
    out_h, out_w = col.shape[-2:]
    if out is not None and pad == (0, 0):
        padded = out  # no border to crop: add straight into the result
        padded.fill(0)
    else:
        padded = xp.zeros((n, c, h + 2 * pad[0], w + 2 * pad[1]), dtype=col.dtype)
    stop_h, stop_w = stride[0] * (out_h - 1) + 1, stride[1] * (out_w - 1) + 1
    per_image = col.transpose(3, 0, 1, 2, 4, 5)  # N, C, kh, kw, Ho, Wo
    for i in range(kernel[0]):
        top = i * dilation[0]
        for j in range(kernel[1]):
            left = j * dilation[1]
            padded[:, :, top:top + stop_h:stride[0], left:left + stop_w:stride[1]] += per_image[:, :, i, j]
    if padded is out:
        return out
    image = padded[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w]
    if out is None:
        return xp.ascontiguousarray(image)
    out[...] = image
    return out
