"""Shared code of Caffe's recurrent layers (not a layer type).

``RecurrentLayer`` holds what BVLC's recurrent_layer.cpp does for RNN and LSTM: the
bottoms ``x`` (T x N x ...), ``cont`` (T x N), an optional static input ``x_static``
(N x ...) and, with ``expose_hidden``, the initial hidden state(s) as extra bottoms and
the final one(s) as extra tops; its CHECKs; and the hidden state carried from one
forward to the next (Caffe copies ``h_T`` (and ``c_T``) into ``h_0`` (``c_0``) before
each forward, so a batch whose first ``cont`` is 1 continues the previous batch).

Caffe builds an unrolled net of InnerProduct, Scale, Eltwise, LSTMUnit/TanH, Slice,
Split and Concat layers inside LayerSetUp. The subclasses run the same products and
elementwise operations in the same order, without the net: every internal
InnerProduct is one GEMM per timestep (or one over all T*N rows for the input
transform), the Scale by ``cont`` one multiply, the Eltwise SUM ``a + b (+ s)``, and
the split sums of the diffs in Caffe's order. Parameters shared between timesteps
accumulate their diff from the last timestep back to the first, as the unrolled
net's backward does. Like Caffe's RecurrentLayer::Backward, the whole unrolled
backward runs whenever the layer's backward does (every parameter diff is
accumulated, whatever ``param_propagate_down`` says), and no gradient reaches
``cont`` or the exposed hidden-state bottoms.

The LSTMUnit arithmetic of lstm_unit_layer.cpp is here too (``lstm_unit_forward`` /
``lstm_unit_backward``), shared by the LSTMUnit layer and the LSTM layer's timesteps.
"""
from __future__ import annotations

import numpy

from .. import backend
from ..errors import NetDefinitionError, ShapeError
from ..fillers import fill, filled_array
from ..layer import Layer
from ..mathops import accumulate_matmul, accumulate_sum_rows, matmul_into

F64 = numpy.float64


# -- LSTMUnit's arithmetic (lstm_unit_layer.cpp) -------------------------------------
def caffe_sigmoid(xp, x):
    """LSTMUnit's ``sigmoid``: ``1. / (1. + exp(-x))``. ``exp`` of a float is the float
    overload (glibc's ``expf``: Caffe's headers include <math.h>, which brings std's
    overloads into scope), taken here as the double exp rounded to float (expf is
    correctly rounded but for rare ties); the rest is double, rounded to the Dtype on
    return."""
    with numpy.errstate(over="ignore"):  # exp overflows to inf: 1 / inf = 0, as in C
        exp_in_dtype = xp.exp(-x.astype(F64)).astype(x.dtype).astype(F64)
        return (1.0 / (1.0 + exp_in_dtype)).astype(x.dtype)


def caffe_tanh(xp, x):
    """LSTMUnit's ``tanh``: ``2. * sigmoid(2. * x) - 1.``: ``2. * x`` is a double, so
    that sigmoid runs in double too; one rounding to the Dtype at the end."""
    with numpy.errstate(over="ignore"):
        sigmoid = 1.0 / (1.0 + xp.exp(-2.0 * x.astype(F64)))
        return (2.0 * sigmoid - 1.0).astype(x.dtype)


def _gates(xp, gate_input, cont):
    """(i, f, o, g) of one timestep: sigmoids of the first three H-column blocks, tanh of
    the fourth; ``f = cont == 0 ? 0 : cont * sigmoid(f')``."""
    hidden = gate_input.shape[1] // 4
    acts = caffe_sigmoid(xp, gate_input[:, :3 * hidden])
    cont_col = cont.reshape(-1, 1)
    forget = xp.where(cont_col == 0, acts.dtype.type(0), cont_col * acts[:, hidden:2 * hidden])
    return acts[:, :hidden], forget, acts[:, 2 * hidden:], caffe_tanh(xp, gate_input[:, 3 * hidden:])


def lstm_unit_forward(xp, c_prev, gate_input, cont, c_out, h_out) -> None:
    """One LSTMUnit forward over N x H: ``c = f * c_prev + i * g``, ``h = o * tanh(c)``
    (``gate_input`` N x 4H in Caffe's order i, f, o, g; ``cont`` N values)."""
    i, f, o, g = _gates(xp, gate_input, cont)
    xp.add(f * c_prev, i * g, out=c_out)
    xp.multiply(o, caffe_tanh(xp, c_out), out=h_out)


def lstm_unit_backward(xp, c_prev, gate_input, cont, c, c_diff, h_diff, gate_diff):
    """One LSTMUnit backward: writes the N x 4H ``gate_diff`` and returns the c_prev diff,
    with Caffe's products in Caffe's order (Dtype arithmetic)."""
    hidden = c.shape[1]
    i, f, o, g = _gates(xp, gate_input, cont)
    tanh_c = caffe_tanh(xp, c)
    c_term = c_diff + h_diff * o * (1 - tanh_c * tanh_c)
    gate_diff[:, :hidden] = c_term * g * i * (1 - i)
    gate_diff[:, hidden:2 * hidden] = c_term * c_prev * f * (1 - f)
    gate_diff[:, 2 * hidden:3 * hidden] = h_diff * tanh_c * o * (1 - o)
    gate_diff[:, 3 * hidden:] = c_term * i * (1 - g * g)
    return c_term * f


# -- RecurrentLayer ---------------------------------------------------------------------
class RecurrentLayer(Layer):
    """The common part of RNN and LSTM (Caffe's RecurrentLayer). Subclasses set
    ``recurrent_names`` (the hidden states, in Caffe's RecurrentInputBlobNames order)."""

    num_bottoms = None
    num_tops = None
    in_place_allowed = False  # the top replaces the input the input transform reads
    recurrent_names: tuple[str, ...] = ("h",)

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != 1  # Caffe: no gradient to the sequence continuation indicators

    def check_blob_counts(self, bottom, top) -> None:
        """Caffe's Min/MaxBottomBlobs and ExactNumTopBlobs, which depend on expose_hidden."""
        exposed = len(self.recurrent_names) if self.param.recurrent_param.expose_hidden else 0
        least, tops = 2 + exposed, 1 + exposed
        where = f"layer '{self.name}' ({self.type_name})"
        if not least <= len(bottom) <= least + 1:
            inputs = "x, cont" + "".join(f", {n}_0" for n in self.recurrent_names[:exposed])
            raise NetDefinitionError(
                f"{where} takes {least} or {least + 1} bottom blobs ({inputs}, and optionally x_static "
                f"after cont{' with expose_hidden' if exposed else ''}), got {len(bottom)}")
        if len(top) != tops:
            raise NetDefinitionError(
                f"{where} produces {tops} top blob(s){' with expose_hidden' if exposed else ''}, got {len(top)}")
        super().check_blob_counts(bottom, top)

    # -- setup and reshape ---------------------------------------------------------
    def _setup_recurrent(self, bottom) -> None:
        """Caffe's LayerSetUp checks (then FillUnrolledNet's num_output > 0), before any
        allocation; sets T, N, num_output, input_dim, static_dim, expose_hidden."""
        p = self.param.recurrent_param
        self.expose_hidden = bool(p.expose_hidden)
        self.static = len(bottom) > 2 + (len(self.recurrent_names) if self.expose_hidden else 0)
        self._check_x(bottom)
        self.T, self.N = bottom[0].shape[0], bottom[0].shape[1]
        self._check_cont(bottom)
        self.input_dim = bottom[0].count(2)
        self.static_dim = self._check_static(bottom) if self.static else 0
        self.num_output = int(p.num_output)
        if self.num_output <= 0:
            raise NetDefinitionError(f"layer '{self.name}' ({self.type_name}): recurrent_param.num_output must be "
                                     f"positive, got {self.num_output}")
        self._carried: list = [None] * len(self.recurrent_names)

    def _check_x(self, bottom) -> None:
        axes = bottom[0].num_axes
        if axes < 2:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): bottom {self.bottom_name(0)} of shape "
                             f"{bottom[0].shape} must have at least 2 axes -- (#timesteps, #streams, ...)")
        if axes < 3:  # Caffe's input transform is an InnerProduct with axis 2
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): bottom {self.bottom_name(0)} of shape "
                             f"{bottom[0].shape} needs a third axis: the input transform is an InnerProduct "
                             f"over axes 2.. (shape T x N x input)")

    def _check_cont(self, bottom) -> None:
        cont = bottom[1]
        if cont.num_axes != 2 or cont.shape != (self.T, self.N):
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): bottom {self.bottom_name(1)} (cont) has "
                             f"shape {cont.shape}; it must have exactly 2 axes -- (#timesteps, #streams) = "
                             f"({self.T}, {self.N})")

    def _check_static(self, bottom) -> int:
        static = bottom[2]
        if static.num_axes < 2 or static.shape[0] != self.N:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): bottom {self.bottom_name(2)} (x_static) "
                             f"has shape {static.shape}; it must be N x ... with N = {self.N} streams and at "
                             f"least 2 axes (its transform is an InnerProduct with axis 1)")
        return static.count(1)

    def _filled(self, shape: tuple[int, ...], filler):
        """A new parameter blob filled as one of the unrolled net's InnerProducts fills it."""
        blob = self.new_param_blob(shape)
        fill(blob, filler)
        return blob

    def _discarded_fill(self, shape: tuple[int, ...], filler) -> None:
        """The fill of a timestep's copy of a shared weight: Caffe's InnerProduct fills it
        in its LayerSetUp before the net shares it, so it still draws from the stream."""
        filled_array(filler, shape, self.dtype or numpy.float32, caffe_random=True)

    def _reshape_recurrent(self, bottom, top) -> None:
        """Caffe's Reshape checks (T fixed, N may change), then the tops' shapes."""
        self._check_x(bottom)
        if bottom[0].shape[0] != self.T:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): input number of timesteps changed: "
                             f"bottom {self.bottom_name(0)} has {bottom[0].shape[0]}, the layer was set up "
                             f"for {self.T}")
        self.N = bottom[0].shape[1]
        self._check_cont(bottom)
        if bottom[0].count(2) != self.input_dim:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): input size {bottom[0].count(2)} (bottom "
                             f"{self.bottom_name(0)} of shape {bottom[0].shape}) does not match the weights, "
                             f"which expect {self.input_dim}")
        if self.static and self._check_static(bottom) != self.static_dim:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): x_static size {bottom[2].count(1)} does "
                             f"not match the weights, which expect {self.static_dim}")
        state_shape = (1, self.N, self.num_output)
        if self.expose_hidden:
            first = 2 + self.static
            for k, name in enumerate(self.recurrent_names):
                if bottom[first + k].shape != state_shape:
                    raise ShapeError(f"layer '{self.name}' ({self.type_name}): bottom {self.bottom_name(first + k)} "
                                     f"({name}_0) has shape {bottom[first + k].shape}; it must match the hidden "
                                     f"state input shape {state_shape}")
        top[0].reshape((self.T, self.N, self.num_output))
        for blob in top[1:]:
            blob.reshape(state_shape)

    # -- the hidden state ---------------------------------------------------------------
    def _initial_states(self, bottom) -> list:
        """h_0 (and c_0), N x H each: the exposed bottoms, or the state the previous forward
        left (zeros at first, and where the batch grew past what Caffe's blobs held)."""
        n, hidden = self.N, self.num_output
        if self.expose_hidden:
            first = 2 + self.static
            return [bottom[first + k].data.reshape(n, hidden).copy() for k in range(len(self.recurrent_names))]
        xp, count, device = bottom[0].xp, n * hidden, backend.device_of(bottom[0].data)
        states = []
        for k, flat in enumerate(self._carried):
            if flat is None or flat.size < count:  # Caffe's blob reallocates: fresh zeros
                flat = self._carried[k] = xp.zeros(count, dtype=bottom[0].data.dtype)
            elif backend.device_of(flat) != device:  # the net moved: the state moves with it
                flat = self._carried[k] = backend.to_device(flat, device)
            states.append(flat[:count].reshape(n, hidden).copy())
        return states

    def _input_backward(self, step_diff, bottom, propagate_down) -> None:
        """The backward of the input transforms, after the timesteps (``step_diff``: T x N x
        the gate or hidden width): the static input's W (its Split sums the diffs of every
        timestep, t = 0 first), then the per-step W·x_t + b (dW, db, the diff to x)."""
        steps, num = step_diff.shape[:2]
        if self.static:
            static_diff = step_diff[0].copy()
            for t in range(1, steps):
                static_diff += step_diff[t]
            accumulate_matmul(self.blobs[2], static_diff.T, bottom[2].data.reshape(num, self.static_dim))
            if propagate_down[2]:
                matmul_into(static_diff, self.blobs[2].data, bottom[2].diff.reshape(num, self.static_dim))
        rows = step_diff.reshape(steps * num, step_diff.shape[2])
        accumulate_matmul(self.blobs[0], rows.T, bottom[0].data.reshape(steps * num, self.input_dim))
        accumulate_sum_rows(self.blobs[1], rows)
        if propagate_down[0]:
            matmul_into(rows, self.blobs[0].data, bottom[0].diff.reshape(steps * num, self.input_dim))

    def _final_states(self, finals, top) -> None:
        """Keep h_T (and c_T) for the next forward; with expose_hidden, the extra tops."""
        for k, final in enumerate(finals):
            if self.expose_hidden:
                top[1 + k].data[...] = final.reshape(top[1 + k].shape)
            else:
                self._carried[k][:final.size] = final.reshape(-1)
