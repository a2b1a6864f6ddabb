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


def spatial_values(param, repeated: str, prefix: str, default: int | None, axes: int) -> tuple[int, ...]:
    """One value per spatial axis (``axes`` of them) of a kernel/stride/pad/dilation field:
    the repeated field once or once per axis, or (2 axes) its ``_h``/``_w`` form."""
    if axes == 2:
        return _spatial_pair(param, repeated, prefix, default)
    has_hw = f"{prefix}_h" in param.DESCRIPTOR.fields_by_name
    if has_hw and (param.HasField(f"{prefix}_h") or param.HasField(f"{prefix}_w")):
        raise NetDefinitionError(f"{prefix}_h/{prefix}_w can only be used with 2 spatial axes")
    values = [int(v) for v in getattr(param, repeated)]
    if len(values) not in (0, 1, axes):
        raise NetDefinitionError(f"{repeated} must be given once or once per spatial axis ({axes}), "
                                 f"got {len(values)} values")
    if not values:
        if default is None:
            raise NetDefinitionError(f"{repeated} is required")
        values = [default]
    return tuple(values) if len(values) == axes else tuple(values) * axes


def read_geometry(param, axes: int, where: str) -> tuple[tuple[int, ...], ...]:
    """(kernel, stride, pad, dilation) of a ``convolution_param``, one value per spatial
    axis, checked as Caffe checks them (NetDefinitionError naming ``where``)."""
    try:
        geometry = (spatial_values(param, "kernel_size", "kernel", None, axes),
                    spatial_values(param, "stride", "stride", 1, axes),
                    spatial_values(param, "pad", "pad", 0, axes),
                    spatial_values(param, "dilation", "dilation", 1, axes))
    except NetDefinitionError as exc:
        raise NetDefinitionError(f"{where}: {exc}") from None
    for what, values in (("kernel size", geometry[0]), ("stride", geometry[1]), ("dilation", geometry[3])):
        if min(values) <= 0:
            raise NetDefinitionError(f"{where}: {what} must be > 0, got {values}")
    return geometry


@register("Convolution")
class ConvolutionLayer(Layer):
    """2-D convolution with Caffe's parameters and weight layout ``[Co, C/group, kh, kw]``.

    ``axis`` (default 1) is the channel axis: the axes before it are all images (N is
    their product) and one or two spatial axes follow it. A 1-D convolution (one
    spatial axis, weights ``[Co, C/group, k]``) runs as a 1 x k one. ``dilation``
    spreads the kernel taps (DeepLab's atrous convolution).

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
        self._read_axes(p, bottom[0])
        geometry = read_geometry(p, self.num_spatial_axes, f"layer '{self.name}' ({self.type_name})")
        if self.num_spatial_axes == 1:  # a 1-D convolution is 1 x w
            geometry = tuple((0 if what == 2 else 1, values[0]) for what, values in enumerate(geometry))
        self.kernel, self.stride, self.pad, self.dilation = geometry
        self.num_output = int(p.num_output)
        self.group = int(p.group)
        self.channels = bottom[0].shape[self.axis]
        if self.num_output <= 0:
            raise NetDefinitionError(
                f"layer '{self.name}' ({self.type_name}): convolution_param.num_output must be > 0")
        if self.group <= 0 or self.channels % self.group or self.num_output % self.group:
            raise NetDefinitionError(
                f"layer '{self.name}' ({self.type_name}): group {self.group} must divide both the "
                f"input channels ({self.channels}) and num_output ({self.num_output})")
        self.bias_term = bool(p.bias_term)
        self.kernel_dim = self._column_channels() // self.group * self.kernel[0] * self.kernel[1]
        self.blobs = [self.new_param_blob(self._weight_shape())]
        if self.bias_term:
            self.blobs.append(self.new_param_blob((self.num_output,)))
        for blob, filler, what in zip(self.blobs, (p.weight_filler, p.bias_filler), ("weight", "bias")):
            try:
                fill(blob, filler)
            except NetDefinitionError as exc:
                raise NetDefinitionError(f"layer '{self.name}' ({self.type_name}): {what}_filler: {exc}") from None
        self._cols: list = [None] * len(bottom)
        self._fresh = [False] * len(bottom)
        self._dcol = None

    def _column_pixels(self) -> int:
        """Columns per image in the col buffer: the output pixels (a Deconvolution's input pixels)."""
        return self.out_spatial_dim

    def _column_channels(self) -> int:
        """The channels the col buffer is made of (the bottom's; a Deconvolution's top's)."""
        return self.channels

    def _weight_shape(self) -> tuple[int, ...]:
        """Caffe's ``[num_output, C/group, kernel...]`` (one kernel axis per spatial axis)."""
        kernel = self.kernel if self.num_spatial_axes == 2 else self.kernel[1:]
        return (self.num_output, self.channels // self.group) + kernel

    def _read_axes(self, p, bottom) -> None:
        """The channel axis (``axis``, default 1) and the 1 or 2 spatial axes after it."""
        try:
            self.axis = bottom.canonical_axis(int(p.axis))
        except IndexError:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): axis {p.axis} out of range for "
                             f"bottom shape {bottom.shape}") from None
        self.num_spatial_axes = bottom.num_axes - self.axis - 1
        if self.num_spatial_axes not in (1, 2):
            raise ShapeError(
                f"layer '{self.name}' ({self.type_name}): {self.num_spatial_axes} spatial axes after the "
                f"channel axis {self.axis} of bottom shape {bottom.shape}; only 1-D (N x C x W) and "
                f"2-D (N x C x H x W) convolution are supported")

    def _images(self, array):
        """A bottom array as N x C x H x W (the axes before ``axis`` are N; a 1-D input has H = 1)."""
        return array.reshape(self._image_shape)

    def _outputs(self, array):
        """A top array as N x Co x Ho x Wo."""
        return array.reshape((self.num, self.num_output) + self.output_shape)

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        for blob in bottom[1:]:
            if blob.shape != shape:
                raise ShapeError(f"layer '{self.name}' (Convolution): all bottoms must have one shape, "
                                 f"got {shape} and {blob.shape}")
        if len(shape) != self.axis + 1 + self.num_spatial_axes or shape[self.axis] != self.channels:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): bottom shape {shape} does not "
                             f"match the weights, which expect {self.channels} channels on axis "
                             f"{self.axis} and {self.num_spatial_axes} spatial axes after it")
        self.num = 1
        for size in shape[:self.axis]:
            self.num *= size
        self.input_shape = tuple(shape[self.axis + 1:]) if self.num_spatial_axes == 2 \
            else (1, shape[-1])
        self._image_shape = (self.num, self.channels) + self.input_shape
        shape = self._image_shape
        self.output_shape = self._spatial_output(shape[2:])
        if min(self.output_shape) <= 0:
            raise ShapeError(
                f"layer '{self.name}' ({self.type_name}): kernel {self.kernel} (dilation {self.dilation}) "
                f"does not fit the {shape[2]}x{shape[3]} input with pad {self.pad}")
        self.out_spatial_dim = self.output_shape[0] * self.output_shape[1]
        self.col_shape = (self.kernel_dim * self.group, self.out_spatial_dim)
        spatial = self.output_shape if self.num_spatial_axes == 2 else self.output_shape[1:]
        for blob in top:
            blob.reshape(bottom[0].shape[:self.axis] + (self.num_output,) + spatial)

    def _spatial_output(self, size) -> tuple[int, int]:
        """(Ho, Wo) for an H x W input: Caffe's floor rule."""
        height, width = (conv_output_size(size[d], self.kernel[d], self.stride[d], self.pad[d],
                                          self.dilation[d]) for d in range(2))
        return height, width

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
        per_image = self.kernel_dim * self.group * self._column_pixels()
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
            bottom_data, top_data = self._images(b.data), self._outputs(t.data)
            for images in chunks:
                col = self._im2col(k, bottom_data[images])
                product = xp.matmul(weight, self._columns(col))  # G x Co/G x P*m
                per_image = product.reshape((self.num_output,) + self.output_shape + (-1,))
                per_image = per_image.transpose(3, 0, 1, 2)
                if self.bias_term:  # one pass: move the image axis back to the front and add b
                    xp.add(per_image, self.blobs[1].data.reshape(1, -1, 1, 1), out=top_data[images])
                else:
                    top_data[images] = per_image
            # with one chunk the buffer now holds every column: backward reuses them
            self._fresh[k] = len(chunks) == 1

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        bias_down = self.bias_term and self.param_propagate_down[1]
        for k, (t, b) in enumerate(zip(top, bottom)):
            if not (bias_down or self.param_propagate_down[0] or propagate_down[k]):
                continue
            top_diff = self._outputs(t.diff)
            for images in self._chunks():
                delta = self._by_channel(top_diff[images], xp)
                if bias_down:
                    # db += delta . 1, summed over the pixels of every image
                    self._accumulate(self.blobs[1], delta.sum(axis=2).reshape(self.num_output))
                if self.param_propagate_down[0] or propagate_down[k]:
                    self._backward_products(k, b, images, delta, propagate_down[k], xp)
            self._fresh[k] = False

    def _backward_products(self, k: int, bottom, images: slice, delta, down: bool, xp) -> None:
        # the forward's columns when still there (Caffe recomputes them from the same bottom data)
        col = self._cols[k] if self._fresh[k] else self._im2col(k, self._images(bottom.data)[images])
        weight_blob = self.blobs[0]
        if self.param_propagate_down[0]:
            # dW += delta . col^T, summed over the images (one GEMM per group), computed as
            # (col . delta^T)^T: the same sums, and OpenBLAS runs this layout about 2x faster
            weight_grad = xp.matmul(self._columns(col), delta.transpose(0, 2, 1))
            self._accumulate(weight_blob, weight_grad.transpose(0, 2, 1))
        if down:
            # dcol = W^T . delta, then col2im onto the bottom diff
            self._dcol = self._reusable(self._dcol, col.shape, col)
            if self._dcol is None:
                self._dcol = xp.empty_like(col)
            weight_t = self._weights(weight_blob.data).transpose(0, 2, 1)
            xp.matmul(weight_t, delta, out=self._columns(self._dcol))
            bottom_diff = self._images(bottom.diff)[images]
            col2im(self._dcol, bottom_diff.shape, self.kernel, self.stride, self.pad, self.dilation,
                   out=bottom_diff)

    @staticmethod
    def _accumulate(blob, grad) -> None:
        target = blob.diff.reshape(grad.shape)
        if blob.diff_is_clear:
            target[...] = grad
            blob.diff_is_clear = False
        else:
            target += grad

