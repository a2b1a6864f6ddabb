"""LSTM: Caffe's unrolled long short-term memory layer (lstm_layer.cpp).

Bottoms x (T x N x ...), cont (T x N), optional x_static (N x ...), with
``expose_hidden`` then h_0 and c_0 (1 x N x H); tops h (T x N x H), with
``expose_hidden`` then h_T and c_T. Per timestep t, as the unrolled net computes it:
``h_conted = cont_t * h_{t-1}`` (Scale), ``gate_input_t = W_hc h_conted + (W_xc x_t + b_c)
(+ W_xc_static x_static)`` (InnerProducts and an Eltwise SUM), then LSTMUnit (gates
i, f, o, g) gives c_t and h_t. Parameters, in Caffe's order: W_xc (4H x input), b_c (4H),
[W_xc_static (4H x static input)], W_hc (4H x H). See recurrent.py.
"""
from __future__ import annotations

from ..layer import register
from ..mathops import accumulate_matmul, matmul_into
from .recurrent import RecurrentLayer, lstm_unit_backward, lstm_unit_forward


@register("LSTM")
class LSTMLayer(RecurrentLayer):
    recurrent_names = ("h", "c")

    def layer_setup(self, bottom, top):
        self._setup_recurrent(bottom)
        p, gates = self.param.recurrent_param, 4 * self.num_output
        # the unrolled net's fills in its layer order: x_transform (W_xc, b_c), the static
        # transform (W_xc_static), then transform_1 .. transform_T (W_hc, each filled, the first kept)
        self.blobs = [self._filled((gates, self.input_dim), p.weight_filler), self._filled((gates,), p.bias_filler)]
        if self.static:
            self.blobs.append(self._filled((gates, self.static_dim), p.weight_filler))
        self.blobs.append(self._filled((gates, self.num_output), p.weight_filler))
        for _ in range(1, self.T):
            self._discarded_fill((gates, self.num_output), p.weight_filler)

    def reshape(self, bottom, top):
        self._reshape_recurrent(bottom, top)

    def forward(self, bottom, top):
        xp, dtype = bottom[0].xp, bottom[0].data.dtype
        T, N, H = self.T, self.N, self.num_output
        w_hc, cont = self.blobs[-1].data, bottom[1].data
        # x_transform over all T*N rows: W_xc_x = x . W_xc^T + b_c
        x_part = xp.empty((T, N, 4 * H), dtype=dtype)
        matmul_into(bottom[0].data.reshape(T * N, self.input_dim), self.blobs[0].data.T, x_part.reshape(T * N, 4 * H))
        x_part += self.blobs[1].data
        static_part = None
        if self.static:
            static_part = xp.empty((N, 4 * H), dtype=dtype)
            matmul_into(bottom[2].data.reshape(N, self.static_dim), self.blobs[2].data.T, static_part)
        h_prev, c_prev = self._initial_states(bottom)
        self._c0 = c_prev
        self._h_conted = xp.empty((T, N, H), dtype=dtype)
        self._gate_input = xp.empty((T, N, 4 * H), dtype=dtype)
        self._c = xp.empty((T, N, H), dtype=dtype)
        h_top = top[0].data
        for t in range(T):
            xp.multiply(h_prev, cont[t].reshape(N, 1), out=self._h_conted[t])
            gate_input = self._gate_input[t]
            matmul_into(self._h_conted[t], w_hc.T, gate_input)
            gate_input += x_part[t]
            if static_part is not None:
                gate_input += static_part
            lstm_unit_forward(xp, c_prev, gate_input, cont[t], self._c[t], h_top[t])
            h_prev, c_prev = h_top[t], self._c[t]
        self._final_states([h_prev, c_prev], top)

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        T, N, H = self.T, self.N, self.num_output
        w_hc, cont, top_diff = self.blobs[-1], bottom[1].data, top[0].diff
        gate_diff = xp.empty((T, N, 4 * H), dtype=top_diff.dtype)
        c_diff = xp.zeros((N, H), dtype=top_diff.dtype)  # c_T's diff: nothing past the batch
        h_recurrent_diff = None
        for t in reversed(range(T)):
            # h_t feeds the Concat and (t < T-1) the next Scale: Caffe's Split sums their diffs
            h_diff = top_diff[t] if h_recurrent_diff is None else h_recurrent_diff + top_diff[t]
            c_prev = self._c[t - 1] if t > 0 else self._c0
            c_diff = lstm_unit_backward(xp, c_prev, self._gate_input[t], cont[t], self._c[t], c_diff, h_diff,
                                        gate_diff[t])
            accumulate_matmul(w_hc, gate_diff[t].T, self._h_conted[t])
            if t > 0:  # h_0 is an input of the unrolled net: it gets no gradient
                h_conted_diff = xp.empty((N, H), dtype=top_diff.dtype)
                matmul_into(gate_diff[t], w_hc.data, h_conted_diff)
                h_recurrent_diff = h_conted_diff * cont[t].reshape(N, 1)
        self._input_backward(gate_diff, bottom, propagate_down)  # W_xc (static, then per step), b_c
