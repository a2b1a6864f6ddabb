"""Convolution: im2col, then the InnerProduct's three products per image.

Per image ``n`` and group ``g`` (Caffe's BaseConvolutionLayer):

- forward     ``top[n] (Co/G x Ho*Wo) = W (Co/G x K) . col[n] (K x Ho*Wo) + b``
- weight grad ``dW (Co/G x K) += delta[n] (Co/G x Ho*Wo) . col[n]^T``, summed over n
- bias grad   ``db += delta[n] . 1``, summed over n and pixels
- data grad   ``dcol[n] = W^T . delta[n]``, then col2im onto ``bottom_diff[n]``

with ``K = C/G * kh * kw``. The columns of all images sit side by side
(see :mod:`engine.im2col`), so each sum over n is a single GEMM.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..fillers import fill
from ..im2col import col2im, conv_output_size, im2col
from ..layer import Layer, register

#: at most this many values in one col buffer; larger batches are done in runs of images
COL_BUFFER_ELEMENTS = 1 << 25


def _spatial_pair(param, repeated: str, prefix: str, default: int | None) -> tuple[int, int]:
    """Read a repeated field (``kernel_size``, ``stride``, ``pad``: one value or one per
    spatial axis) or its ``<prefix>_h``/``<prefix>_w`` form, as (h, w)."""
    values = [int(v) for v in getattr(param, repeated)]
    has_hw = f"{prefix}_h" in param.DESCRIPTOR.fields_by_name
    if has_hw and (param.HasField(f"{prefix}_h") or param.HasField(f"{prefix}_w")):
        if values:
            raise NetDefinitionError(f"give either {repeated} or {prefix}_h/{prefix}_w, not both")
        return int(getattr(param, f"{prefix}_h")), int(getattr(param, f"{prefix}_w"))
    if not values:
        if default is None:
            raise NetDefinitionError(f"{repeated} (or {prefix}_h and {prefix}_w) is required")
        return default, default
    if len(values) in (1, 2):
        return values[0], values[-1]
    raise NetDefinitionError(
        f"{repeated} must be given once or once per spatial dimension (2), got {len(values)} values")


@register("Convolution")
class ConvolutionLayer(Layer):
    """2-D convolution with Caffe's parameters and weight layout ``[Co, C/group, kh, kw]``.

    Attributes set in reshape (read by the step-through): ``num`` (N),
    ``channels`` (C), ``input_shape`` (H, W), ``num_output`` (Co), ``group``, ``kernel_dim``
    (K = C/group*kh*kw), ``out_spatial_dim`` (Ho*Wo), ``output_shape`` (Ho, Wo),
    ``col_shape`` (Caffe's per-image col buffer: ``[C*kh*kw, Ho*Wo]``).
    """

    num_bottoms = None
    num_tops = None

    def layer_setup(self, bottom, top):
        p = self.param.convolution_param
        if len(bottom) != len(top) or not bottom:
            raise NetDefinitionError(
                f"layer '{self.name}' (Convolution): needs one top per bottom, got "
                f"{len(bottom)} bottom(s) and {len(top)} top(s)")
        if bottom[0].num_axes != 4 or bottom[0].canonical_axis(p.axis) != 1:
            raise ShapeError(
                f"layer '{self.name}' (Convolution): only 2-D convolution of N x C x H x W blobs "
                f"(axis 1) is supported; bottom shape is {bottom[0].shape}, axis {p.axis}")
        try:
            self.kernel = _spatial_pair(p, "kernel_size", "kernel", None)
            self.stride = _spatial_pair(p, "stride", "stride", 1)
            self.pad = _spatial_pair(p, "pad", "pad", 0)
            self.dilation = _spatial_pair(p, "dilation", "dilation", 1)
        except NetDefinitionError as exc:
            raise NetDefinitionError(f"layer '{self.name}' (Convolution): {exc}") from None
        for what, pair, low in (("kernel size", self.kernel, 1), ("stride", self.stride, 1),
                                ("dilation", self.dilation, 1)):
            if min(pair) < low:
                raise NetDefinitionError(
                    f"layer '{self.name}' (Convolution): {what} must be > 0, got {pair}")
        self.num_output = int(p.num_output)
        self.group = int(p.group)
        self.channels = bottom[0].shape[1]
        if self.num_output <= 0:
            raise NetDefinitionError(
                f"layer '{self.name}' (Convolution): convolution_param.num_output must be > 0")
        if self.group <= 0 or self.channels % self.group or self.num_output % self.group:
            raise NetDefinitionError(
                f"layer '{self.name}' (Convolution): group {self.group} must divide both the "
                f"input channels ({self.channels}) and num_output ({self.num_output})")
        self.bias_term = bool(p.bias_term)
        self.kernel_dim = self.channels // self.group * self.kernel[0] * self.kernel[1]
        self.blobs = [self.new_param_blob((self.num_output, self.channels // self.group) + self.kernel)]
        fill(self.blobs[0], p.weight_filler)
        if self.bias_term:
            self.blobs.append(self.new_param_blob((self.num_output,)))
            fill(self.blobs[1], p.bias_filler)
        self._cols: list = [None] * len(bottom)
        self._fresh = [False] * len(bottom)
        self._dcol = None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        for blob in bottom[1:]:
            if blob.shape != shape:
                raise ShapeError(f"layer '{self.name}' (Convolution): all bottoms must have one shape, "
                                 f"got {shape} and {blob.shape}")
        if len(shape) != 4 or shape[1] != self.channels:
            raise ShapeError(f"layer '{self.name}' (Convolution): bottom shape {shape} does not match "
                             f"the weights, which expect N x {self.channels} x H x W")
        self.num = shape[0]
        self.input_shape = shape[2:]
        self.output_shape = tuple(
            conv_output_size(shape[2 + d], self.kernel[d], self.stride[d], self.pad[d], self.dilation[d])
            for d in range(2))
        if min(self.output_shape) <= 0:
            raise ShapeError(
                f"layer '{self.name}' (Convolution): kernel {self.kernel} (dilation {self.dilation}) "
                f"does not fit the {shape[2]}x{shape[3]} input with pad {self.pad}")
        self.out_spatial_dim = self.output_shape[0] * self.output_shape[1]
        self.col_shape = (self.kernel_dim * self.group, self.out_spatial_dim)
        for blob in top:
            blob.reshape((self.num, self.num_output) + self.output_shape)

    # -- the matrices -------------------------------------------------------
    def _weights(self, array):
        """W (or dW) as G x Co/G x K."""
        return array.reshape(self.group, self.num_output // self.group, self.kernel_dim)

    def _columns(self, col):
        """A col buffer (C x kh x kw x Ho x Wo x m) as G x K x (Ho*Wo * m)."""
        return col.reshape(self.group, self.kernel_dim, -1)

    def _by_channel(self, images, xp):
        """m x Co x Ho x Wo -> G x Co/G x (Ho*Wo * m), the column order of the col buffer (a copy)."""
        moved = xp.ascontiguousarray(images.transpose(1, 2, 3, 0))
        return moved.reshape(self.group, self.num_output // self.group, -1)

    def _chunks(self) -> list[slice]:
        """Runs of images whose columns fit in COL_BUFFER_ELEMENTS (one run for LeNet-sized nets)."""
        per_image = self.channels * self.kernel[0] * self.kernel[1] * self.out_spatial_dim
        size = max(1, min(self.num, COL_BUFFER_ELEMENTS // per_image))
        return [slice(start, min(start + size, self.num)) for start in range(0, self.num, size)]

    @staticmethod
    def _reusable(buffer, shape, like):
        """``buffer`` if it has ``shape`` and the dtype and array type of ``like``, else None."""
        if buffer is not None and buffer.shape == shape and type(buffer) is type(like) \
                and buffer.dtype == like.dtype:
            return buffer
        return None

    def _im2col(self, k: int, images):
        """The columns of ``images`` in bottom ``k``'s reused buffer."""
        shape = (self.channels,) + self.kernel + self.output_shape + (images.shape[0],)
        self._cols[k] = im2col(images, self.kernel, self.stride, self.pad, self.dilation,
                               out=self._reusable(self._cols[k], shape, images))
        return self._cols[k]

    def forward(self, bottom, top):
        xp = bottom[0].xp
        weight = self._weights(self.blobs[0].data)
        chunks = self._chunks()
        for k, (b, t) in enumerate(zip(bottom, top)):
            for images in chunks:
                col = self._im2col(k, b.data[images])
                product = xp.matmul(weight, self._columns(col))  # G x Co/G x P*m
                per_image = product.reshape((self.num_output,) + self.output_shape + (-1,))
                per_image = per_image.transpose(3, 0, 1, 2)
                if self.bias_term:  # one pass: move the image axis back to the front and add b
                    xp.add(per_image, self.blobs[1].data.reshape(1, -1, 1, 1), out=t.data[images])
                else:
                    t.data[images] = per_image
            # with one chunk the buffer now holds every column: backward reuses them
            self._fresh[k] = len(chunks) == 1

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        bias_down = self.bias_term and self.param_propagate_down[1]
        for k, (t, b) in enumerate(zip(top, bottom)):
            if not (bias_down or self.param_propagate_down[0] or propagate_down[k]):
                continue
            for images in self._chunks():
                delta = self._by_channel(t.diff[images], xp)
                if bias_down:
                    # db += delta . 1, summed over the pixels of every image
                    self._accumulate(self.blobs[1], delta.sum(axis=2).reshape(self.num_output))
                if self.param_propagate_down[0] or propagate_down[k]:
                    self._backward_products(k, b, images, delta, propagate_down[k], xp)
            self._fresh[k] = False

    def _backward_products(self, k: int, bottom, images: slice, delta, down: bool, xp) -> None:
        # the forward's columns when still there (Caffe recomputes them from the same bottom data)
        col = self._cols[k] if self._fresh[k] else self._im2col(k, bottom.data[images])
        weight_blob = self.blobs[0]
        if self.param_propagate_down[0]:
            # dW += delta . col^T, summed over the images (one GEMM per group)
            self._accumulate(weight_blob, xp.matmul(delta, self._columns(col).transpose(0, 2, 1)))
        if down:
            # dcol = W^T . delta, then col2im onto the bottom diff
            self._dcol = self._reusable(self._dcol, col.shape, col)
            if self._dcol is None:
                self._dcol = xp.empty_like(col)
            weight_t = self._weights(weight_blob.data).transpose(0, 2, 1)
            xp.matmul(weight_t, delta, out=self._columns(self._dcol))
            col2im(self._dcol, bottom.diff[images].shape, self.kernel, self.stride, self.pad, self.dilation,
                   out=bottom.diff[images])

    @staticmethod
    def _accumulate(blob, grad) -> None:
        target = blob.diff.reshape(grad.shape)
        if blob.diff_is_clear:
            target[...] = grad
            blob.diff_is_clear = False
        else:
            target += grad

