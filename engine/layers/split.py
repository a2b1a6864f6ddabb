"""Split: the layer Caffe inserts when one top feeds several bottoms.

The tops share the bottom's data; on the way back their diffs are summed.
"""
from ..layer import Layer, register


@register("Split")
class SplitLayer(Layer):
    num_bottoms = 1
    min_tops = 1

    def reshape(self, bottom, top):
        for blob in top:
            blob.reshape_like(bottom[0])
            blob.share_data(bottom[0])

    def forward(self, bottom, top):
        for blob in top:  # the bottom's data array may have been replaced since reshape
            if blob.data is not bottom[0].data:
                blob.share_data(bottom[0])

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        if len(top) == 1:
            bottom[0].diff[...] = top[0].diff
            return
        xp.add(top[0].diff, top[1].diff, out=bottom[0].diff)
        for blob in top[2:]:
            bottom[0].diff += blob.diff
