"""Deconvolution: the transpose of Convolution (Caffe's DeconvolutionLayer), e.g. FCN upsampling.

Weights ``[C, Co/group, kh, kw]`` (C the bottom's channels, Co = num_output); output
size ``stride * (H - 1) + dilation * (k - 1) + 1 - 2 * pad``. Per group, with the
columns of the *top* (``K = Co/group * kh * kw`` rows):

- forward     ``col = W^T (K x C/G) . x (C/G x H*W)``, then col2im onto the top, plus b
- weight grad ``dW (C/G x K) += x . im2col(delta)^T``
- bias grad   ``db += delta . 1``
- data grad   ``dx = W . im2col(delta)`` (a Convolution of delta)

All images' columns side by side, as in :mod:`engine.layers.convolution`.
"""
from __future__ import annotations

from ..im2col import col2im, im2col
from ..layer import register
from .convolution import ConvolutionLayer


@register("Deconvolution")
class DeconvolutionLayer(ConvolutionLayer):
    """Convolution's machinery run backwards: forward is Convolution's data gradient."""
    in_place_allowed = False  # wrong in place: backward reads the bottom the top overwrote

    def _column_channels(self) -> int:
        return self.num_output

    def _column_pixels(self) -> int:
        return self.input_shape[0] * self.input_shape[1]

    def _weight_shape(self) -> tuple[int, ...]:
        kernel = self.kernel if self.num_spatial_axes == 2 else self.kernel[1:]
        return (self.channels, self.num_output // self.group) + kernel

    def _spatial_output(self, size) -> tuple[int, int]:
        height, width = (self.stride[d] * (size[d] - 1) + self.dilation[d] * (self.kernel[d] - 1) + 1
                         - 2 * self.pad[d] for d in range(2))
        return height, width

    # -- the matrices -------------------------------------------------------
    def _weights(self, array):
        """W (or dW) as G x C/G x K."""
        return array.reshape(self.group, self.channels // self.group, self.kernel_dim)

    def _inputs_by_channel(self, images, xp):
        """m x C x H x W -> G x C/G x (H*W * m), the column order of im2col (a copy)."""
        moved = xp.ascontiguousarray(images.transpose(1, 2, 3, 0))
        return moved.reshape(self.group, self.channels // self.group, -1)

    def _top_columns(self, top_images):
        """im2col of a top-shaped batch (m x Co x Ho x Wo) as G x K x (H*W * m)."""
        col = im2col(top_images, self.kernel, self.stride, self.pad, self.dilation)
        return col.reshape(self.group, self.kernel_dim, -1)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        weight_t = self._weights(self.blobs[0].data).transpose(0, 2, 1)
        for b, t in zip(bottom, top):
            top_data = self._outputs(t.data)
            for images in self._chunks():
                x = self._inputs_by_channel(self._images(b.data)[images], xp)
                count = images.stop - images.start
                col = xp.matmul(weight_t, x).reshape(
                    (self.num_output,) + self.kernel + self.input_shape + (count,))
                col2im(col, (count, self.num_output) + self.output_shape, self.kernel, self.stride,
                       self.pad, self.dilation, out=top_data[images])
            if self.bias_term:
                top_data += self.blobs[1].data.reshape(1, -1, 1, 1)

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        bias_down = self.bias_term and self.param_propagate_down[1]
        weight_down = self.param_propagate_down[0]
        for k, (t, b) in enumerate(zip(top, bottom)):
            top_diff = self._outputs(t.diff)
            if bias_down:
                self._accumulate(self.blobs[1], top_diff.sum(axis=(0, 2, 3)))
            if not (weight_down or propagate_down[k]):
                continue
            for images in self._chunks():
                columns = self._top_columns(top_diff[images])
                if weight_down:
                    x = self._inputs_by_channel(self._images(b.data)[images], xp)
                    # dW = x . cols^T, computed as (cols . x^T)^T (a faster BLAS layout)
                    weight_grad = xp.matmul(columns, x.transpose(0, 2, 1))
                    self._accumulate(self.blobs[0], weight_grad.transpose(0, 2, 1))
                if propagate_down[k]:
                    product = xp.matmul(self._weights(self.blobs[0].data), columns)  # G x C/G x H*W*m
                    per_image = product.reshape((self.channels,) + self.input_shape + (-1,))
                    self._images(b.diff)[images] = per_image.transpose(3, 0, 1, 2)
