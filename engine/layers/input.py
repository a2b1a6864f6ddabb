"""Input: tops whose values the user sets (``net.blobs['data'].data[...] = x``)."""
from ..errors import NetDefinitionError
from ..layer import Layer, register


@register("Input")
class InputLayer(Layer):
    num_bottoms = 0

    def layer_setup(self, bottom, top):
        shapes = [tuple(int(d) for d in s.dim) for s in self.param.input_param.shape]
        if len(shapes) not in (0, 1, len(top)):
            raise NetDefinitionError(
                f"layer '{self.name}': input_param must give 0, 1 or {len(top)} shapes, got {len(shapes)}")
        for i, blob in enumerate(top):
            if shapes:
                blob.reshape(shapes[0] if len(shapes) == 1 else shapes[i])

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass
