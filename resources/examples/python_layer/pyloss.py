"""A Euclidean loss written as a Python layer (pycaffe's classic example).

    loss = 1/(2N) * sum over the batch of (prediction - target)^2

Its gradient: +(prediction - target)/N for the prediction, -(prediction - target)/N
for the target, times the loss weight that arrives as top[0].diff.
Under BVLC Caffe, write ``import caffe`` instead of the engine.pycaffe import.
"""
import numpy as np

import engine.pycaffe as caffe


class EuclideanLossLayer(caffe.Layer):
    """bottom[0]: the prediction, bottom[1]: the target (the same number of values); top[0]: the loss."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("EuclideanLossLayer needs two bottoms: the prediction and the target")

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise Exception(f"the two bottoms must hold as many values: {bottom[0].count} and {bottom[1].count}")
        self.diff = np.zeros(bottom[0].data.shape, dtype=bottom[0].data.dtype)  # kept for backward
        top[0].reshape(1)  # the loss: one number

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data.reshape(self.diff.shape)
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for i, sign in ((0, 1), (1, -1)):  # d loss / d prediction = +diff/N, d loss / d target = -diff/N
            if not propagate_down[i]:
                continue
            alpha = sign * top[0].diff[0] / bottom[i].num
            bottom[i].diff[...] = (alpha * self.diff).reshape(bottom[i].diff.shape)
