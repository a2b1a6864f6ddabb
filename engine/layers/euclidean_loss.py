"""EuclideanLoss: 1/(2N) * sum (a - b)^2, gradients +-(a - b)/N."""
from ..errors import ShapeError
from ..layer import Layer, register
from .loss_common import BATCH_SIZE, normalizer


@register("EuclideanLoss")
class EuclideanLossLayer(Layer):
    num_bottoms = 2
    num_tops = 1
    is_loss = True

    def reshape(self, bottom, top):
        if bottom[0].count(1) != bottom[1].count(1) or bottom[0].shape[0] != bottom[1].shape[0]:
            raise ShapeError(
                f"layer '{self.name}': the two inputs must have the same size, got "
                f"{self.bottom_name(0)} {bottom[0].shape} and {self.bottom_name(1)} {bottom[1].shape}")
        top[0].reshape(())
        self.difference = None

    def forward(self, bottom, top):
        a = bottom[0].data
        self.difference = a - bottom[1].data.reshape(a.shape)
        d = self.difference.reshape(-1)
        num = normalizer(BATCH_SIZE, bottom[0].shape[0], 1)  # Caffe divides by the batch size
        top[0].data[...] = (d @ d) / a.dtype.type(num) / a.dtype.type(2)

    def backward(self, top, propagate_down, bottom):
        num = normalizer(BATCH_SIZE, bottom[0].shape[0], 1)
        for i, sign in ((0, 1), (1, -1)):
            if propagate_down[i]:
                alpha = sign * top[0].diff.reshape(-1)[0] / bottom[i].dtype.type(num)
                bottom[i].diff[...] = (alpha * self.difference).reshape(bottom[i].shape)
