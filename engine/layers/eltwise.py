"""Eltwise: element-wise SUM (with per-bottom coefficients), PROD or MAX of the bottoms."""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register
from ..proto import caffe_pb2

PROD, SUM, MAX = (caffe_pb2.EltwiseParameter.PROD, caffe_pb2.EltwiseParameter.SUM,
                  caffe_pb2.EltwiseParameter.MAX)


@register("Eltwise")
class EltwiseLayer(Layer):
    num_bottoms = None
    num_tops = 1

    @property
    def in_place_allowed(self) -> bool:  # type: ignore[override]
        """SUM only: PROD and MAX read the bottoms in backward, which the top overwrote."""
        return self.param.eltwise_param.operation == caffe_pb2.EltwiseParameter.SUM

    def layer_setup(self, bottom, top):
        p = self.param.eltwise_param
        if len(bottom) < 2:
            raise NetDefinitionError(f"layer '{self.name}' (Eltwise): needs at least two bottoms, "
                                     f"got {len(bottom)}")
        if p.coeff and len(p.coeff) != len(bottom):
            raise NetDefinitionError(f"layer '{self.name}' (Eltwise): give one coeff per bottom "
                                     f"({len(bottom)}), got {len(p.coeff)}")
        self.operation = p.operation
        if p.coeff and self.operation == PROD:  # Caffe's check (MAX ignores them)
            raise NetDefinitionError(
                f"layer '{self.name}' (Eltwise): coefficients are only for operation: SUM")
        self.coeffs = [float(c) for c in p.coeff] or [1.0] * len(bottom)
        self.stable_prod_grad = bool(p.stable_prod_grad)

    def reshape(self, bottom, top):
        for blob in bottom[1:]:
            if blob.shape != bottom[0].shape:
                raise ShapeError(f"layer '{self.name}' (Eltwise): all bottoms must have one shape, "
                                 f"got {bottom[0].shape} and {blob.shape}")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        out = top[0].data
        if self.operation == SUM:
            values = [self._scaled(b.data, c) for b, c in zip(bottom, self.coeffs)]
            out[...] = values[0]
            for v in values[1:]:
                out += v
        elif self.operation == PROD:
            xp.multiply(bottom[0].data, bottom[1].data, out=out)
            for blob in bottom[2:]:
                out *= blob.data
        else:
            self._forward_max(bottom, out, xp)

    @staticmethod
    def _scaled(array, coeff: float):
        return array if coeff == 1.0 else array * array.dtype.type(coeff)

    def _forward_max(self, bottom, out, xp) -> None:
        # Caffe: between bottoms 0 and 1 a tie goes to 1; later bottoms need a strict >.
        first, second = bottom[0].data, bottom[1].data
        self.mask = xp.where(first > second, 0, 1).astype(xp.int32)
        xp.maximum(first, second, out=out)
        for index, blob in enumerate(bottom[2:], start=2):
            better = blob.data > out
            xp.copyto(out, blob.data, where=better)
            xp.copyto(self.mask, index, where=better)

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        top_diff = top[0].diff
        for i, blob in enumerate(bottom):
            if not propagate_down[i]:
                continue
            if self.operation == SUM:
                blob.diff[...] = self._scaled(top_diff, self.coeffs[i])
            elif self.operation == PROD:
                blob.diff[...] = top_diff * self._others_product(bottom, i, top[0].data, xp)
            else:
                blob.diff[...] = xp.where(self.mask == i, top_diff, 0)

    def _others_product(self, bottom, i: int, top_data, xp):
        """The product of every bottom but ``i`` (Caffe's stable_prod_grad), or top / bottom_i."""
        if not self.stable_prod_grad:
            return top_data / bottom[i].data
        product = None
        for j, blob in enumerate(bottom):
            if j != i:
                product = blob.data.copy() if product is None else product * blob.data
        return product
