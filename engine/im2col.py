"""im2col / col2im on strided views: the matrix form of a 2-D convolution.

One body serves numpy and cupy (the array module comes from the input array).

Layout. For an input batch ``x`` of shape ``N x C x H x W`` and a kernel
``kh x kw`` the column matrix has Caffe's rows, ``(c * kh + i) * kw + j``,
and one column per output pixel of every image: shape
``(C * kh * kw) x (Ho * Wo * N)``, stored as ``C x kh x kw x Ho x Wo x N``.
Column ``(y * Wo + x) * N + n`` is Caffe's column ``y * Wo + x`` of image
``n``, so Caffe's N per-image GEMMs (each summing over one image's columns)
become one GEMM over all columns: the same sums. The image index is the
innermost axis because then every strided copy and add below runs over long
contiguous rows (``Wo * N`` values) instead of rows of ``Wo``.
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


def _images_last(x, pad: Pair):
    """``N x C x H x W`` -> a zero-padded ``C x (H + 2*ph) x (W + 2*pw) x N`` copy."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = xp.zeros((c, h + 2 * pad[0], w + 2 * pad[1], n), dtype=x.dtype)
    out[:, pad[0]:pad[0] + h, pad[1]:pad[1] + w, :] = x.transpose(1, 2, 3, 0)
    return out


def output_size(image_shape: Sequence[int], kernel: Pair, stride: Pair, pad: Pair, dilation: Pair) -> Pair:
    """(Ho, Wo) of a convolution of ``N x C x H x W`` images."""
    return (conv_output_size(image_shape[2], kernel[0], stride[0], pad[0], dilation[0]),
            conv_output_size(image_shape[3], kernel[1], stride[1], pad[1], dilation[1]))


def im2col(x, kernel: Pair, stride: Pair, pad: Pair, dilation: Pair, out=None):
    """The column matrix of ``x`` (``N x C x H x W``), shape ``C x kh x kw x Ho x Wo x N``.

    ``out`` (optional) is a buffer of that shape to fill. Padded pixels are 0.
    """
    xp = get_array_module(x)
    out_h, out_w = output_size(x.shape, kernel, stride, pad, dilation)
    padded = _images_last(x, pad)
    s_c, s_h, s_w, s_n = padded.strides
    shape = (padded.shape[0],) + tuple(kernel) + (out_h, out_w, padded.shape[3])
    strides = (s_c, dilation[0] * s_h, dilation[1] * s_w, stride[0] * s_h, stride[1] * s_w, s_n)
    windows = _as_strided(xp, padded, shape, strides)
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    out[...] = windows
    return out


def col2im(col, image_shape: Sequence[int], kernel: Pair, stride: Pair, pad: Pair, dilation: Pair,
           out=None):
    """Sum the columns back onto the images (the adjoint of :func:`im2col`).

    ``col`` has the layout ``C x kh x kw x Ho x Wo x N``; the result (written
    into ``out`` when given) has ``image_shape`` = ``N x C x H x W``. One strided
    add per kernel offset: no Python loop over pixels or images.
    """
    xp = get_array_module(col)
    n, c, h, w = image_shape
    out_h, out_w = col.shape[3:5]
    padded = xp.zeros((c, h + 2 * pad[0], w + 2 * pad[1], n), dtype=col.dtype)
    stop_h, stop_w = stride[0] * (out_h - 1) + 1, stride[1] * (out_w - 1) + 1
    for i in range(kernel[0]):
        top = i * dilation[0]
        for j in range(kernel[1]):
            left = j * dilation[1]
            padded[:, top:top + stop_h:stride[0], left:left + stop_w:stride[1], :] += col[:, i, j]
    images = padded[:, pad[0]:pad[0] + h, pad[1]:pad[1] + w, :].transpose(3, 0, 1, 2)
    if out is None:
        return xp.ascontiguousarray(images)
    out[...] = images
    return out
