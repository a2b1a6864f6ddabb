"""WindowData: refused with the reason (Caffe's R-CNN era window sampler is not built)."""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register


@register("WindowData")
class WindowDataLayer(Layer):
    """Caffe's WindowDataLayer samples foreground/background windows of images
    listed in a window file (R-CNN fine-tuning). It is not built: the engine
    refuses it at setup instead of feeding the net something else."""

    num_bottoms = 0

    def layer_setup(self, bottom, top):
        raise NetDefinitionError(
            f"layer '{self.name}': the WindowData layer (R-CNN window sampling) is not supported; "
            f"crop the windows into images and use an ImageData layer (list file of 'path label' lines), "
            f"or write them into an LMDB with convert_imageset and use a Data layer")

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass
