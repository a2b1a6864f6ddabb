"""InnerProduct: the seed's layer. top = bottom . W^T + b, and three backward products."""
from __future__ import annotations

from ..errors import ShapeError
from ..fillers import fill
from ..layer import Layer, register
from ..mathops import accumulate_matmul, accumulate_sum_rows, matmul_into


@register("InnerProduct")
class InnerProductLayer(Layer):
    """Fully connected layer with Caffe's M_, N_, K_ (see the seed article).

    M_ = bottom.count(0, axis) samples, K_ = bottom.count(axis) inputs,
    N_ = num_output outputs; W is N_ x K_ (K_ x N_ when ``transpose``).
    """

    num_bottoms = 1
    num_tops = 1
    in_place_allowed = False  # wrong in place: backward reads the bottom the top overwrote

    def layer_setup(self, bottom, top):
        p = self.param.inner_product_param
        self.N = int(p.num_output)
        if self.N <= 0:
            raise ShapeError(f"layer '{self.name}': inner_product_param.num_output must be > 0")
        self.bias_term = p.bias_term
        self.transpose = p.transpose
        self.axis = bottom[0].canonical_axis(p.axis)
        self.K = bottom[0].count(self.axis)
        weight_shape = (self.K, self.N) if self.transpose else (self.N, self.K)
        self.blobs = [self.new_param_blob(weight_shape)]
        fill(self.blobs[0], p.weight_filler)
        if self.bias_term:
            self.blobs.append(self.new_param_blob((self.N,)))
            fill(self.blobs[1], p.bias_filler)

    def reshape(self, bottom, top):
        K = bottom[0].count(self.axis)
        if K != self.K:
            raise ShapeError(
                f"layer '{self.name}': input size K_={K} (bottom {self.bottom_name(0)} of shape "
                f"{bottom[0].shape}) does not "
                f"match the weights, which expect K_={self.K}")
        self.M = bottom[0].count(0, self.axis)
        top[0].reshape(bottom[0].shape[:self.axis] + (self.N,))

    _view_cache = None

    def _views(self, bottom, top):
        """(bottom data, bottom diff, top data, top diff) as 2-D M x K / M x N views,
        made once per set of arrays (a blob's arrays change only when it is reshaped
        or moved), so the hot path does no reshaping."""
        bd, bf, td, tf = bottom[0].data, bottom[0].diff, top[0].data, top[0].diff
        cache = self._view_cache
        if cache is None or cache[0] is not bd or cache[1] is not bf or cache[2] is not td \
                or cache[3] is not tf:
            M, K, N = self.M, self.K, self.N
            cache = self._view_cache = (bd, bf, td, tf, bd.reshape(M, K), bf.reshape(M, K),
                                        td.reshape(M, N), tf.reshape(M, N))
        return cache[4:]

    _data_cache = None

    def _data_views(self, bottom, top):
        """(bottom data, top data) as M x K / M x N views: forward reads no diff, so a
        forward-only net allocates none."""
        bd, td = bottom[0].data, top[0].data
        cache = self._data_cache
        if cache is None or cache[0] is not bd or cache[1] is not td:
            cache = self._data_cache = (bd, td, bd.reshape(self.M, self.K), td.reshape(self.M, self.N))
        return cache[2], cache[3]

    def forward(self, bottom, top):
        bottom_data, top_data = self._data_views(bottom, top)
        weight = self.blobs[0].data
        matmul_into(bottom_data, weight if self.transpose else weight.T, top_data)
        if self.bias_term:
            top_data += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        bottom_data, bottom_diff, _, top_diff = self._views(bottom, top)
        weight = self.blobs[0]
        if self.param_propagate_down[0]:
            # 1. dW += delta^T . a  (N_ x M_ . M_ x K_)
            if self.transpose:
                accumulate_matmul(weight, bottom_data.T, top_diff)
            else:
                accumulate_matmul(weight, top_diff.T, bottom_data)
        if self.bias_term and self.param_propagate_down[1]:
            # 2. db += delta^T . 1_M
            accumulate_sum_rows(self.blobs[1], top_diff)
        if propagate_down[0]:
            # 3. delta_down = delta . W  (M_ x N_ . N_ x K_)
            w = weight.data
            matmul_into(top_diff, w.T if self.transpose else w, bottom_diff)
