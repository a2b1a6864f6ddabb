"""LSTMUnit: one LSTM timestep (Caffe's lstm_unit_layer.cpp), the cell of the LSTM layer.

Bottoms c_prev (1 x N x H), gate_input (1 x N x 4H, gates i, f, o, g in that order),
cont (1 x N); tops c and h (1 x N x H): ``c = cont * f * c_prev + i * g`` (f taken as 0
where cont is 0), ``h = o * tanh(c)``, with i, f, o sigmoids and g a tanh of the four
H-blocks of gate_input. No parameters; no gradient to cont (Caffe CHECKs it).
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register
from .recurrent import lstm_unit_backward, lstm_unit_forward


@register("LSTMUnit")
class LSTMUnitLayer(Layer):
    num_bottoms = 3
    num_tops = 2
    in_place_allowed = False  # backward reads c_prev and c, and gate_input and h

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != 2

    def reshape(self, bottom, top):
        where = f"layer '{self.name}' (LSTMUnit)"
        num = bottom[0].shape[1] if bottom[0].num_axes > 1 else -1
        for k, (role, axes) in enumerate((("c_prev", 3), ("gate_input", 3), ("cont", 2))):
            shape = bottom[k].shape
            if len(shape) != axes or shape[0] != 1 or shape[1] != num:
                raise ShapeError(f"{where}: bottom {self.bottom_name(k)} ({role}) has shape {shape}; it must have "
                                 f"{axes} axes, 1 timestep and the {num} streams of bottom {self.bottom_name(0)}")
        self.hidden = bottom[0].shape[2]
        if bottom[1].shape[2] != 4 * self.hidden:
            raise ShapeError(f"{where}: bottom {self.bottom_name(1)} (gate_input) has {bottom[1].shape[2]} values "
                             f"per stream; it must have 4 x {self.hidden} (i, f, o, g for the cell size of "
                             f"bottom {self.bottom_name(0)})")
        top[0].reshape_like(bottom[0])
        top[1].reshape_like(bottom[0])

    def forward(self, bottom, top):
        num, hidden = bottom[0].shape[1], self.hidden
        lstm_unit_forward(bottom[0].xp, bottom[0].data.reshape(num, hidden), bottom[1].data.reshape(num, 4 * hidden),
                          bottom[2].data.reshape(num), top[0].data.reshape(num, hidden),
                          top[1].data.reshape(num, hidden))

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            raise NetDefinitionError(f"layer '{self.name}' (LSTMUnit) cannot backpropagate to the sequence "
                                     f"indicators {self.bottom_name(2)} (as in Caffe): give it propagate_down: false")
        if not propagate_down[0] and not propagate_down[1]:
            return
        num, hidden, xp = bottom[0].shape[1], self.hidden, bottom[0].xp
        gate_diff = xp.empty((num, 4 * hidden), dtype=top[0].diff.dtype)
        c_prev_diff = lstm_unit_backward(
            xp, bottom[0].data.reshape(num, hidden), bottom[1].data.reshape(num, 4 * hidden), bottom[2].data.reshape(num),
            top[0].data.reshape(num, hidden), top[0].diff.reshape(num, hidden), top[1].diff.reshape(num, hidden),
            gate_diff)
        if propagate_down[0]:
            bottom[0].diff[...] = c_prev_diff.reshape(bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff[...] = gate_diff.reshape(bottom[1].shape)
