"""Pooling: MAX, AVE and STOCHASTIC over 2-D windows, with Caffe's ceil output size.

``global_pooling: true`` makes the window the whole H x W plane. STOCHASTIC (Caffe
has it on the GPU only) outputs in TEST the activation-weighted average
``sum(x^2) / sum(x)`` and in TRAIN one activation picked with probability
proportional to its value (from the engine's seeded random stream, not Caffe's).

Output size ``ceil((H + 2*pad - k) / stride) + 1``, minus one when padding is
used and the last window would start in the padding. AVE divides by the
window clipped to ``H + pad`` (padding counts, the overhang past it does not).
MAX scans each window row by row and keeps the first maximum (Caffe's strict
``>``); backward routes the whole top diff to it. An optional second top holds
Caffe's mask: the flat index ``h * W + w`` of each maximum, as a float.

Every window offset is one strided slice of a padded copy of the input, so the
work is ``kh * kw`` array operations, never a loop over pixels or images.
"""
from __future__ import annotations

from .. import backend, rng
from ..backend import get_array_module
from ..errors import NetDefinitionError, ShapeError
from ..im2col import pad_images
from ..layer import Layer, register
from ..proto import caffe_pb2

MAX, AVE, STOCHASTIC = (caffe_pb2.PoolingParameter.MAX, caffe_pb2.PoolingParameter.AVE,
                        caffe_pb2.PoolingParameter.STOCHASTIC)
TRAIN = 0  # caffe_pb2.TRAIN
FLT_MIN = 1.1754943508222875e-38  # Caffe starts STOCHASTIC's TEST sum at FLT_MIN (also for double)


def pooled_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's pooled length: ceil rounding, then the 'last window starts in the padding' fix."""
    span = size + 2 * pad - kernel
    pooled = -(-span // stride) + 1  # integer ceil, also right for span < 0
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def _pair(p, name: str, default: int | None) -> tuple[int, int]:
    """``name`` or ``name_h`` + ``name_w`` (Caffe: one form or the other, never both)."""
    scalar = "kernel_size" if name == "kernel" else name
    has_h, has_w = p.HasField(f"{name}_h"), p.HasField(f"{name}_w")
    if has_h or has_w:
        if p.HasField(scalar) or not (has_h and has_w):
            raise NetDefinitionError(f"give either {scalar}, or both {name}_h and {name}_w")
        return int(getattr(p, f"{name}_h")), int(getattr(p, f"{name}_w"))
    if not p.HasField(scalar) and default is None:
        raise NetDefinitionError(f"{scalar} (or {name}_h and {name}_w) is required")
    value = int(getattr(p, scalar)) if p.HasField(scalar) else int(default or 0)
    return value, value


@register("Pooling")
class PoolingLayer(Layer):
    num_bottoms = 1
    num_tops = None
    min_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.pooling_param
        if len(top) > 2:
            raise NetDefinitionError(f"layer '{self.name}' (Pooling): at most two tops (output, mask)")
        self.method = p.pool
        if len(top) == 2 and self.method != MAX:
            raise NetDefinitionError(f"layer '{self.name}' (Pooling): the mask top exists only for MAX")
        self.global_pooling = bool(p.global_pooling)
        try:
            self._read_geometry(p)
        except NetDefinitionError as exc:
            raise NetDefinitionError(f"layer '{self.name}' (Pooling): {exc}") from None

    def _read_geometry(self, p) -> None:
        if self.global_pooling:
            if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
                raise NetDefinitionError("with global_pooling: true no kernel size may be given")
            self.kernel = None
        else:
            self.kernel = _pair(p, "kernel", None)
            if min(self.kernel) <= 0:
                raise NetDefinitionError(f"kernel size must be > 0, got {self.kernel}")
        self.pad = _pair(p, "pad", 0)
        self.stride = _pair(p, "stride", 1)
        if min(self.stride) <= 0:
            raise NetDefinitionError(f"stride must be > 0, got {self.stride}")
        if self.global_pooling and (self.pad != (0, 0) or self.stride != (1, 1)):
            raise NetDefinitionError("with global_pooling: true only pad 0 and stride 1 are allowed")
        if self.kernel and (self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]):
            raise NetDefinitionError(f"pad {self.pad} must be smaller than the kernel {self.kernel}")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != 4:
            raise ShapeError(f"layer '{self.name}' (Pooling): input must have 4 axes "
                             f"(N x C x H x W), got shape {shape}")
        self.height, self.width = shape[2], shape[3]
        if self.global_pooling:
            self.kernel = (self.height, self.width)
        self.pooled = (pooled_size(self.height, self.kernel[0], self.stride[0], self.pad[0]),
                       pooled_size(self.width, self.kernel[1], self.stride[1], self.pad[1]))
        if min(self.pooled) <= 0:
            raise ShapeError(f"layer '{self.name}' (Pooling): kernel {self.kernel} with pad {self.pad} "
                             f"does not fit the {self.height}x{self.width} input")
        for d, size in enumerate((self.height, self.width)):
            if (self.pooled[d] - 1) * self.stride[d] - self.pad[d] >= size:
                # Caffe leaves such a window empty (MAX: -FLT_MAX and a mask of -1; AVE: 0/0)
                raise ShapeError(
                    f"layer '{self.name}' (Pooling): with kernel {self.kernel[d]} and stride "
                    f"{self.stride[d]} the last of {self.pooled[d]} windows starts outside the "
                    f"{size}-pixel input (Caffe computes garbage there); use a stride <= the kernel "
                    f"or a pad > 0")
        # the padded buffer reaches the end of the last window (it may overhang the padding)
        self.buffer_size = tuple(max(self.pad[d] + (self.height, self.width)[d],
                                     (self.pooled[d] - 1) * self.stride[d] + self.kernel[d])
                                 for d in range(2))
        for blob in top:
            blob.reshape(shape[:2] + self.pooled)
        self._divisor = None

    # -- windows ----------------------------------------------------------
    def _offsets(self):
        """(index, i, j, slice) for every kernel offset, row by row."""
        stop_h = self.stride[0] * (self.pooled[0] - 1) + 1
        stop_w = self.stride[1] * (self.pooled[1] - 1) + 1
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                yield (i * self.kernel[1] + j, i, j,
                       (slice(None), slice(None), slice(i, i + stop_h, self.stride[0]),
                        slice(j, j + stop_w, self.stride[1])))

    def _padded(self, x, fill: float):
        return pad_images(x, self.pad, fill, self.buffer_size)

    def _window_divisor(self, xp, dtype):
        """Caffe's pool_size per output pixel: the window clipped to H + pad (Ho x Wo)."""
        cached = self._divisor
        if cached is None or cached.dtype != dtype or get_array_module(cached) is not xp:
            sizes = []
            for d, size in enumerate((self.height, self.width)):
                start = xp.arange(self.pooled[d]) * self.stride[d] - self.pad[d]
                end = xp.minimum(start + self.kernel[d], size + self.pad[d])
                sizes.append(end - start)
            self._divisor = (sizes[0][:, None] * sizes[1][None, :]).astype(dtype)
        return self._divisor

    # -- forward / backward -------------------------------------------------
    def forward(self, bottom, top):
        if self.method == MAX:
            self._forward_max(bottom[0], top)
        elif self.method == AVE:
            self._forward_ave(bottom[0], top[0])
        elif self.phase == TRAIN:
            self._forward_stochastic_train(bottom[0], top[0])
        else:
            self._forward_stochastic_test(bottom[0], top[0])

    def _forward_max(self, bottom, top):
        xp = bottom.xp
        padded = self._padded(bottom.data, -xp.inf)
        best = top[0].data
        # arg: the kernel offset (i * kw + j) of each window's first maximum. Blends by
        # arithmetic, not masks: masked writes of random patterns are several times slower.
        arg = xp.zeros(best.shape, dtype=xp.int32)
        step = xp.empty_like(arg)
        for index, _, _, window in self._offsets():
            candidate = padded[window]
            if index == 0:
                best[...] = candidate
                continue
            better = candidate > best  # strict: the first maximum wins
            xp.maximum(best, candidate, out=best)
            xp.subtract(index, arg, out=step)
            step *= better
            arg += step
        self.argmax_offset = arg
        if len(top) > 1:
            top[1].data[...] = self.mask_index()

    def mask_index(self):
        """Caffe's mask: the flat index ``h * W + w`` of each maximum in its unpadded plane."""
        xp = get_array_module(self.argmax_offset)
        arg = self.argmax_offset
        row = arg // self.kernel[1] + (xp.arange(self.pooled[0]) * self.stride[0] - self.pad[0])[:, None]
        col = arg % self.kernel[1] + (xp.arange(self.pooled[1]) * self.stride[1] - self.pad[1])[None, :]
        return row * self.width + col

    def _forward_ave(self, bottom, top):
        xp = bottom.xp
        padded = self._padded(bottom.data, 0.0)
        total = top.data
        total.fill(0)
        for _, _, _, window in self._offsets():
            total += padded[window]
        total /= self._window_divisor(xp, total.dtype)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.method == MAX:
            self._backward_max(top[0], bottom[0])
        elif self.method == AVE:
            self._backward_ave(top[0], bottom[0])
        elif self.phase == TRAIN:
            self._backward_stochastic_train(top[0], bottom[0])
        else:
            self._backward_stochastic_test(top[0], bottom[0])

    def _backward_max(self, top, bottom):
        xp = bottom.xp
        top_diff, arg = top.diff, self.argmax_offset
        padded = xp.zeros(bottom.shape[:2] + self.buffer_size, dtype=bottom.diff.dtype)
        for index, _, _, window in self._offsets():
            padded[window] += top_diff * (arg == index)
        self._crop_into(padded, bottom.diff)

    def _crop_into(self, padded, target) -> None:
        target[...] = padded[:, :, self.pad[0]:self.pad[0] + self.height,
                             self.pad[1]:self.pad[1] + self.width]

    def _backward_ave(self, top, bottom):
        xp = bottom.xp
        share = top.diff / self._window_divisor(xp, top.diff.dtype)
        padded = xp.zeros(bottom.shape[:2] + self.buffer_size, dtype=bottom.diff.dtype)
        for _, _, _, window in self._offsets():
            padded[window] += share
        self._crop_into(padded, bottom.diff)

    # -- STOCHASTIC ---------------------------------------------------------
    # Caffe has these only on the GPU (StoPoolForwardTrain/Test, StoPoolBackward); its
    # windows start at ph * stride and ignore ``pad`` (which only enters the output size).
    def _unpadded_windows(self, x):
        """``x`` with zeros after it up to the end of the last window (no padding before)."""
        size = tuple((self.pooled[d] - 1) * self.stride[d] + self.kernel[d] for d in range(2))
        size = (max(size[0], self.height), max(size[1], self.width))
        return pad_images(x, (0, 0), 0.0, size)

    def _forward_stochastic_test(self, bottom, top):
        """Each window's activations weighted by themselves: sum(x^2) / (FLT_MIN + sum(x))."""
        xp = bottom.xp
        windows = self._unpadded_windows(bottom.data)
        weights = xp.full(top.shape, FLT_MIN, dtype=top.data.dtype)
        squares = xp.zeros_like(weights)
        for _, _, _, window in self._offsets():
            values = windows[window]
            weights += values
            squares += values * values
        self.stochastic_weights = weights
        xp.divide(squares, weights, out=top.data)

    def _backward_stochastic_test(self, top, bottom):
        """The derivative of the weighted average, ``(2 x - y) / (FLT_MIN + sum(x))`` per window.

        Caffe has no backward for the TEST mode (it would route through the indices of
        the last TRAIN forward); this is the exact gradient of the forward above."""
        xp = bottom.xp
        windows = self._unpadded_windows(bottom.data)
        share = top.diff / self.stochastic_weights
        spread = xp.zeros(windows.shape, dtype=bottom.diff.dtype)
        for _, _, _, window in self._offsets():
            spread[window] += share * (2 * windows[window] - top.data)
        bottom.diff[...] = spread[:, :, :self.height, :self.width]

    def _forward_stochastic_train(self, bottom, top):
        """Pick one activation per window with probability proportional to its value.

        As Caffe: ``threshold = u * sum(x)`` with ``u`` uniform, then the first cell (row by
        row) where the running sum reaches it. ``u`` comes from the engine's seeded stream
        (:mod:`engine.rng`, drawn on the CPU): the same seed gives the same picks on the CPU
        and the GPU, but the random stream is not Caffe's, so the picks differ from Caffe's.
        """
        xp = bottom.xp
        windows = self._unpadded_windows(bottom.data)
        dtype = top.data.dtype
        totals = xp.zeros(top.shape, dtype=dtype)
        for _, _, _, window in self._offsets():
            totals += windows[window]
        draws = rng.generator().random(top.shape).astype(dtype)
        thresholds = backend.to_device(draws, bottom.device) * totals
        running = xp.zeros_like(totals)
        chosen = xp.full(top.shape, -1, dtype=xp.int32)
        for index, i, j, window in self._offsets():
            values = windows[window]
            running += values
            inside = self._inside_input(i, j, xp)
            newly = (chosen < 0) & (running >= thresholds) & inside
            xp.copyto(chosen, index, where=newly)
            xp.copyto(top.data, values, where=newly)
        # a window whose running sum never reaches the threshold (negative inputs) outputs 0
        xp.copyto(top.data, dtype.type(0), where=chosen < 0)
        self.argmax_offset = chosen

    def _inside_input(self, i: int, j: int, xp):
        """Whether kernel offset (i, j) of each window lies in the input (Ho x Wo, unpadded windows)."""
        rows = xp.arange(self.pooled[0]) * self.stride[0] + i < self.height
        cols = xp.arange(self.pooled[1]) * self.stride[1] + j < self.width
        return rows[:, None] & cols[None, :]

    def _backward_stochastic_train(self, top, bottom):
        """The whole top diff goes to the picked cell (Caffe's StoPoolBackward)."""
        xp = bottom.xp
        spread = xp.zeros(self._unpadded_windows(bottom.data).shape, dtype=bottom.diff.dtype)
        for index, _, _, window in self._offsets():
            spread[window] += top.diff * (self.argmax_offset == index)
        bottom.diff[...] = spread[:, :, :self.height, :self.width]
