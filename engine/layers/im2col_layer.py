"""Im2col: the convolution's column matrix as a blob (Caffe's Im2colLayer).

``convolution_param`` gives kernel, stride, pad and dilation (one value or one per
spatial axis; for 2-D also the ``_h``/``_w`` forms); ``axis`` is the channel axis: the
axes before it are all images, the spatial axes follow it. For each image the top
holds Caffe's columns: in 2-D, channel ``(c * kh + i) * kw + j`` at output pixel
``(y, x)`` is input pixel ``(y * stride_h - pad_h + i * dilation_h,
x * stride_w - pad_w + j * dilation_w)`` of channel ``c`` (0 in the padding), and
likewise along every axis in N-d (kernel offsets in row-major order). Top shape
``[..., C * prod(kernel), out...]`` with Caffe's ``(size + 2*pad - (dilation*(kernel-1)+1))
/ stride + 1`` per axis. Backward is col2im: each top diff goes back to the pixel it
came from, overlapping windows adding up.

One and two spatial axes run on engine.im2col (Caffe's im2col_cpu; its N-d routine,
``force_nd_im2col``, gives the same numbers); three or more on a strided N-d version
here (Caffe's im2col_nd_cpu).
"""
from __future__ import annotations

import itertools
import math

from ..errors import NetDefinitionError, ShapeError
from ..im2col import col2im, im2col
from ..layer import Layer, register
from .convolution import read_geometry


@register("Im2col")
class Im2colLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    in_place_allowed = False

    def layer_setup(self, bottom, top):
        p = self.param.convolution_param
        try:
            self.axis = bottom[0].canonical_axis(int(p.axis))
        except IndexError:
            raise ShapeError(f"layer '{self.name}' (Im2col): convolution_param.axis {p.axis} out of range "
                             f"for bottom shape {bottom[0].shape}") from None
        self.num_spatial_axes = bottom[0].num_axes - self.axis - 1
        if self.num_spatial_axes < 1:
            raise NetDefinitionError(
                f"layer '{self.name}' (Im2col): 0 spatial axes after the channel axis {self.axis} of bottom "
                f"shape {bottom[0].shape}; Caffe needs at least 1")
        self.kernel, self.stride, self.pad, self.dilation = read_geometry(
            p, self.num_spatial_axes, f"layer '{self.name}' (Im2col)")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != self.axis + 1 + self.num_spatial_axes:
            raise ShapeError(f"layer '{self.name}' (Im2col): bottom shape {shape} no longer has "
                             f"{self.num_spatial_axes} spatial axes after axis {self.axis}")
        self.num = math.prod(shape[:self.axis])
        self.channels = shape[self.axis]
        self.spatial = tuple(shape[self.axis + 1:])
        output = []
        for d, size in enumerate(self.spatial):
            extent = self.dilation[d] * (self.kernel[d] - 1) + 1
            if size + 2 * self.pad[d] < extent:
                raise ShapeError(
                    f"layer '{self.name}' (Im2col): kernel {self.kernel[d]} (dilation {self.dilation[d]}) is "
                    f"larger than the {size}-pixel input axis {self.axis + 1 + d} with pad {self.pad[d]}")
            output.append((size + 2 * self.pad[d] - extent) // self.stride[d] + 1)
        self.output = tuple(output)
        top[0].reshape(shape[:self.axis] + (self.channels * math.prod(self.kernel),) + self.output)

    # -- one or two spatial axes: engine.im2col ---------------------------------------------
    def _plane(self):
        """(image shape N x C x H x W, kernel, stride, pad, dilation, output) as 2-D pairs
        (a 1-D input is 1 x W: kernel 1, stride 1, pad 0 on the extra axis)."""
        if self.num_spatial_axes == 2:
            return ((self.num, self.channels) + self.spatial, self.kernel, self.stride, self.pad,
                    self.dilation, self.output)
        return ((self.num, self.channels, 1) + self.spatial, (1,) + self.kernel, (1,) + self.stride,
                (0,) + self.pad, (1,) + self.dilation, (1,) + self.output)

    def forward(self, bottom, top):
        if self.num_spatial_axes > 2:
            self._forward_nd(bottom[0], top[0])
            return
        image_shape, kernel, stride, pad, dilation, _ = self._plane()
        col = im2col(bottom[0].data.reshape(image_shape), kernel, stride, pad, dilation)  # C x kh x kw x Ho x Wo x N
        top[0].data[...] = col.transpose(5, 0, 1, 2, 3, 4).reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.num_spatial_axes > 2:
            self._backward_nd(top[0], bottom[0])
            return
        xp = bottom[0].xp
        image_shape, kernel, stride, pad, dilation, output = self._plane()
        col = top[0].diff.reshape(image_shape[:2] + kernel + output)
        col = xp.ascontiguousarray(col.transpose(1, 2, 3, 4, 5, 0))
        col2im(col, image_shape, kernel, stride, pad, dilation, out=bottom[0].diff.reshape(image_shape))

    # -- three or more spatial axes: strided windows ----------------------------------------
    def _window_slices(self, offset):
        """The output grid's pixels, in the padded input, of kernel ``offset`` (one slice per axis)."""
        return tuple(slice(k * dil, k * dil + step * (out - 1) + 1, step)
                     for k, dil, step, out in zip(offset, self.dilation, self.stride, self.output))

    def _padded_shape(self):
        return (self.num, self.channels) + tuple(s + 2 * p for s, p in zip(self.spatial, self.pad))

    def _inside(self):
        return (slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(self.pad, self.spatial))

    def _forward_nd(self, bottom, top):
        xp = bottom.xp
        padded = xp.zeros(self._padded_shape(), dtype=bottom.data.dtype)
        padded[self._inside()] = bottom.data.reshape((self.num, self.channels) + self.spatial)
        col = top.data.reshape((self.num, self.channels) + self.kernel + self.output)
        everything = (slice(None), slice(None))
        for offset in itertools.product(*(range(k) for k in self.kernel)):
            col[everything + offset] = padded[everything + self._window_slices(offset)]

    def _backward_nd(self, top, bottom):
        xp = bottom.xp
        padded = xp.zeros(self._padded_shape(), dtype=bottom.diff.dtype)
        col = top.diff.reshape((self.num, self.channels) + self.kernel + self.output)
        everything = (slice(None), slice(None))
        for offset in itertools.product(*(range(k) for k in self.kernel)):
            padded[everything + self._window_slices(offset)] += col[everything + offset]
        bottom.diff[...] = padded[self._inside()].reshape(bottom.shape)
