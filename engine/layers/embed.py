"""Embed: a lookup table. Each bottom value is an integer index in ``[0, input_dim)``;
the top adds an axis of ``num_output`` holding that row of the ``input_dim x num_output``
weight (plus the bias with ``bias_term``). Backward adds each top diff row into the row it
came from (and sums them into the bias); indices get no gradient.
"""
from __future__ import annotations

from ..errors import LabelError, NetDefinitionError
from ..fillers import fill
from ..layer import Layer, register
from .bias import accumulate_into


@register("Embed")
class EmbedLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    in_place_allowed = False

    def allow_force_backward(self, bottom_index: int) -> bool:
        return False

    def layer_setup(self, bottom, top):
        p = self.param.embed_param
        self.num_output, self.input_dim = int(p.num_output), int(p.input_dim)
        for field, value in (("num_output", self.num_output), ("input_dim", self.input_dim)):
            if value <= 0:
                raise NetDefinitionError(f"layer '{self.name}' (Embed): embed_param.{field} must be positive, "
                                         f"got {value}")
        self.bias_term = bool(p.bias_term)
        self.blobs = [self.new_param_blob((self.input_dim, self.num_output))]
        fill(self.blobs[0], p.weight_filler)
        if self.bias_term:
            self.blobs.append(self.new_param_blob((self.num_output,)))
            fill(self.blobs[1], p.bias_filler)

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape + (self.num_output,))

    def _indices(self, bottom):
        """The bottom's values as row indices; LabelError naming the first bad one."""
        xp, values = bottom[0].xp, bottom[0].data.reshape(-1)
        index = values.astype(xp.intp)
        bad = (values < 0) | (values >= self.input_dim) | (index != values)
        if values.size and bad.any().item():  # one explicit device->host read
            value = values[bad][0].item()
            raise LabelError(f"layer '{self.name}' (Embed): index {value:g} in bottom {self.bottom_name(0)} is not "
                             f"an integer in [0, {self.input_dim - 1}] (input_dim {self.input_dim})")
        return index

    def forward(self, bottom, top):
        index = self._indices(bottom)
        rows = top[0].data.reshape(-1, self.num_output)
        bottom[0].xp.take(self.blobs[0].data, index, axis=0, out=rows)
        if self.bias_term:
            rows += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise NetDefinitionError(f"layer '{self.name}' (Embed) cannot backpropagate to its input indices "
                                     f"{self.bottom_name(0)} (as in Caffe): give it propagate_down: false")
        xp = bottom[0].xp
        top_diff = top[0].diff.reshape(-1, self.num_output)
        if self.param_propagate_down[0]:
            weight = self.blobs[0]
            table = weight.diff_to_overwrite() if weight.diff_is_clear else weight.diff
            if weight.diff_is_clear:
                table.fill(0)
            index = bottom[0].data.reshape(-1).astype(xp.intp)
            _scatter_add(xp, table, index, top_diff)
            weight.diff_is_clear = False
        if self.bias_term and self.param_propagate_down[1]:
            accumulate_into(self.blobs[1], top_diff.sum(axis=0), True)


def _scatter_add(xp, table, index, rows) -> None:
    """``table[index[n]] += rows[n]`` for every n, repeated indices adding up."""
    if xp.__name__ == "numpy":
        xp.add.at(table, index, rows)
    else:  # cupy
        import cupyx  # only on the GPU
        cupyx.scatter_add(table, index, rows)
