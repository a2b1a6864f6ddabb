"""RNN: Caffe's unrolled simple recurrent layer (rnn_layer.cpp).

Bottoms x (T x N x ...), cont (T x N), optional x_static (N x ...), with
``expose_hidden`` then h_0 (1 x N x H); tops o (T x N x H), with ``expose_hidden`` then
h_T. Per timestep t, as the unrolled net computes it: ``h_conted = cont_t * h_{t-1}``
(Scale), ``h_t = tanh(W_hh h_conted + (W_xh x_t + b_h) (+ W_xh_static x_static))``
(InnerProducts, an Eltwise SUM, TanH), ``o_t = tanh(W_ho h_t + b_o)``. Parameters, in
Caffe's order: W_xh (H x input), b_h (H), [W_xh_static (H x static input)], W_hh (H x H),
W_ho (H x H), b_o (H). See recurrent.py.
"""
from __future__ import annotations

from ..layer import register
from ..mathops import accumulate_matmul, accumulate_sum_rows, float_tanh, matmul_into
from .recurrent import RecurrentLayer


@register("RNN")
class RNNLayer(RecurrentLayer):
    recurrent_names = ("h",)

    def layer_setup(self, bottom, top):
        self._setup_recurrent(bottom)
        p, H = self.param.recurrent_param, self.num_output
        # the unrolled net's fills in its layer order: x_transform (W_xh, b_h), the static
        # transform (W_xh_static), then per timestep W_hh_h_{t-1} (W_hh) and W_ho_h_t (W_ho, b_o),
        # each timestep's copies filled, the first kept
        self.blobs = [self._filled((H, self.input_dim), p.weight_filler), self._filled((H,), p.bias_filler)]
        if self.static:
            self.blobs.append(self._filled((H, self.static_dim), p.weight_filler))
        self.blobs += [self._filled((H, H), p.weight_filler), self._filled((H, H), p.weight_filler),
                       self._filled((H,), p.bias_filler)]
        for _ in range(1, self.T):
            for shape, filler in (((H, H), p.weight_filler), ((H, H), p.weight_filler), ((H,), p.bias_filler)):
                self._discarded_fill(shape, filler)

    def reshape(self, bottom, top):
        self._reshape_recurrent(bottom, top)

    def forward(self, bottom, top):
        xp, dtype = bottom[0].xp, bottom[0].data.dtype
        T, N, H = self.T, self.N, self.num_output
        w_hh, w_ho, b_o = (blob.data for blob in self.blobs[-3:])
        cont = bottom[1].data
        # x_transform over all T*N rows: W_xh_x = x . W_xh^T + b_h
        x_part = xp.empty((T, N, H), dtype=dtype)
        matmul_into(bottom[0].data.reshape(T * N, self.input_dim), self.blobs[0].data.T, x_part.reshape(T * N, H))
        x_part += self.blobs[1].data
        static_part = None
        if self.static:
            static_part = xp.empty((N, H), dtype=dtype)
            matmul_into(bottom[2].data.reshape(N, self.static_dim), self.blobs[2].data.T, static_part)
        (h_prev,) = self._initial_states(bottom)
        self._h_conted = xp.empty((T, N, H), dtype=dtype)
        self._h = xp.empty((T, N, H), dtype=dtype)
        o_top = top[0].data
        for t in range(T):
            xp.multiply(h_prev, cont[t].reshape(N, 1), out=self._h_conted[t])
            neuron_input = self._h[t]  # the sum, then its tanh in place
            matmul_into(self._h_conted[t], w_hh.T, neuron_input)
            neuron_input += x_part[t]
            if static_part is not None:
                neuron_input += static_part
            self._h[t][...] = float_tanh(xp, neuron_input)  # the TanH layer's tanhf
            matmul_into(self._h[t], w_ho.T, o_top[t])
            o_top[t] += b_o
            o_top[t][...] = float_tanh(xp, o_top[t])
            h_prev = self._h[t]
        self._final_states([h_prev], top)

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        T, N, H = self.T, self.N, self.num_output
        w_hh, w_ho, b_o = self.blobs[-3:]
        cont, top_diff, o_top = bottom[1].data, top[0].diff, top[0].data
        dtype = top_diff.dtype
        pre_diff = xp.empty((T, N, H), dtype=dtype)  # the diff of each h_neuron_input_t
        h_recurrent_diff = None
        for t in reversed(range(T)):
            o_pre_diff = top_diff[t] * (1 - o_top[t] * o_top[t])  # o_neuron_t (TanH)
            accumulate_matmul(w_ho, o_pre_diff.T, self._h[t])  # W_ho_h_t: dW, db, then dh
            accumulate_sum_rows(b_o, o_pre_diff)
            h_diff = xp.empty((N, H), dtype=dtype)
            matmul_into(o_pre_diff, w_ho.data, h_diff)
            if h_recurrent_diff is not None:  # h_t also feeds the next Scale: Caffe's Split sums
                h_diff += h_recurrent_diff
            xp.multiply(h_diff, 1 - self._h[t] * self._h[t], out=pre_diff[t])  # h_neuron_t (TanH)
            accumulate_matmul(w_hh, pre_diff[t].T, self._h_conted[t])
            if t > 0:  # h_0 is an input of the unrolled net: it gets no gradient
                h_conted_diff = xp.empty((N, H), dtype=dtype)
                matmul_into(pre_diff[t], w_hh.data, h_conted_diff)
                h_recurrent_diff = h_conted_diff * cont[t].reshape(N, 1)
        self._input_backward(pre_diff, bottom, propagate_down)  # W_xh (static, then per step), b_h
