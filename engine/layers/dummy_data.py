"""DummyData: tops filled by fillers, as Caffe's dummy_data_layer.cpp does it.

Constant fillers fill their tops once, at setup; every other filler refills its
top at each forward, drawing from Caffe's own stream (:func:`engine.rng.caffe_stream`,
like the weight fillers and Dropout), so the data, and everything drawn after it,
are Caffe's. Nothing random is drawn at setup: the weight fillers of the layers
after it draw what they draw in Caffe.
"""
from ..errors import NetDefinitionError
from ..fillers import check_filler, fill
from ..layer import Layer, register
from ..proto import caffe_pb2
from ..validate import require_memory, shape_bytes


@register("DummyData")
class DummyDataLayer(Layer):
    num_bottoms = 0

    def layer_setup(self, bottom, top):
        p = self.param.dummy_data_param
        n = len(top)
        shapes = [tuple(int(d) for d in s.dim) for s in p.shape]
        if not shapes and len(p.num):
            legacy = [p.num, p.channels, p.height, p.width]
            pick = lambda field, i: field[i] if len(field) > 1 else field[0]  # noqa: E731
            shapes = [tuple(int(pick(f, i)) for f in legacy) for i in range(n)]
        if len(shapes) not in (1, n):
            raise NetDefinitionError(f"layer '{self.name}': dummy_data_param needs 1 or {n} shapes")
        fillers = list(p.data_filler) or [caffe_pb2.FillerParameter(type="constant", value=0)]
        if len(fillers) not in (1, n):
            raise NetDefinitionError(f"layer '{self.name}': dummy_data_param needs 0, 1 or {n} data_fillers")
        self.shapes = [shapes[0] if len(shapes) == 1 else shapes[i] for i in range(n)]
        self.fillers = [fillers[0] if len(fillers) == 1 else fillers[i] for i in range(n)]
        self.refill = [f.type != "constant" for f in self.fillers]
        for name, shape in zip(self.param.top, self.shapes):
            if any(d < 0 for d in shape):
                raise NetDefinitionError(f"layer '{self.name}': top '{name}' has a negative dimension {shape}")
            # data and diff, plus the filler's float64 draw and its float32 copy
            require_memory(shape_bytes(shape, 4) * 2 + shape_bytes(shape, 12),
                           f"top '{name}' of shape {shape} (with its filler)")
        for blob, shape, filler, refill in zip(top, self.shapes, self.fillers, self.refill):
            check_filler(filler)
            blob.reshape(shape)
            if not refill:  # Caffe's setup forward, with refill_ inverted: the constant tops
                fill(blob, filler)

    def reshape(self, bottom, top):
        for blob, shape in zip(top, self.shapes):
            blob.reshape(shape)

    def forward(self, bottom, top):
        for blob, filler, refill in zip(top, self.fillers, self.refill):
            if refill:
                fill(blob, filler)
