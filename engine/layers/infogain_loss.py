"""InfogainLoss: softmax over ``axis`` (Caffe 1.0 takes raw scores), then with an infogain
matrix H (num_labels x num_labels), per labelled position
``loss -= sum_l H[label, l] * log(max(p_l, kLOG_THRESHOLD))``, divided by the normalizer
of ``loss_param.normalization`` (default VALID; the legacy ``normalize`` is refused, as in
Caffe). H comes from ``infogain_loss_param.source`` (a binary BlobProto, e.g. a
``.binaryproto``) or from a third bottom. Backward: ``dx_l = (p_l * sum_k H[label, k] -
H[label, l]) * w / normalizer``; zero at ``ignore_label``; nothing to labels or H.
An optional second top is the softmax output.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register
from .loss_common import (
    KLOG_THRESHOLD,
    ignore_label_of,
    label_indices,
    label_positions,
    loss_scale,
    normalizer,
    set_loss,
)
from .softmax import softmax_into


def read_infogain_matrix(layer_name: str, path: str):
    """The matrix a binary BlobProto file holds, as a float array; DataError if unreadable."""
    from .. import io
    from ..proto import caffe_pb2

    proto = io._parse_binary(path, f"infogain matrix file of layer '{layer_name}'", caffe_pb2.BlobProto)
    shape = io.proto_shape(proto)
    if shape is None:
        shape = (proto.num, proto.channels, proto.height, proto.width)
    count = 1
    for dim in shape:
        count *= int(dim)
    values = io.proto_values(proto, count, f"infogain matrix file '{path}' (layer '{layer_name}')")
    return values.reshape(shape)


@register("InfogainLoss")
class InfogainLossLayer(Layer):
    num_bottoms = None
    min_tops = 1
    is_loss = True

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index == 0

    def layer_setup(self, bottom, top):
        if len(bottom) not in (2, 3) or len(top) > 2:
            raise NetDefinitionError(f"layer '{self.name}' (InfogainLoss): takes 2 or 3 bottoms and gives 1 or 2 "
                                     f"tops, got {len(bottom)} and {len(top)}")
        loss_param = self.param.loss_param
        if loss_param.HasField("normalize"):
            raise NetDefinitionError(f"layer '{self.name}' (InfogainLoss): loss_param.normalize is deprecated "
                                     f"for this layer (as in Caffe): use normalization")
        self.normalization = int(loss_param.normalization)
        self.ignore_label = ignore_label_of(loss_param)
        self.infogain = None
        if len(bottom) < 3:
            p = self.param.infogain_loss_param
            if not p.HasField("source") or not p.source:
                raise NetDefinitionError(f"layer '{self.name}' (InfogainLoss): the infogain matrix must come from "
                                         f"infogain_loss_param.source or a third bottom")
            self.infogain = read_infogain_matrix(self.name, p.source)  # on the host, cast per use
        self.valid_count = None
        self._prob_buf = None

    def reshape(self, bottom, top):
        axis = self.param.infogain_loss_param.axis
        self.axis = bottom[0].canonical_axis(int(axis))
        self.outer, self.inner, self.num_labels = label_positions(self, bottom, self.axis)
        matrix_count = bottom[2].count() if len(bottom) > 2 else self.infogain.size
        if matrix_count != self.num_labels * self.num_labels:
            where = self.bottom_name(2) if len(bottom) > 2 else f"'{self.param.infogain_loss_param.source}'"
            raise ShapeError(f"layer '{self.name}' (InfogainLoss): H must be {self.num_labels}x{self.num_labels} "
                             f"for the {self.num_labels} classes on axis {self.axis}, but {where} holds "
                             f"{matrix_count} values")
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    _matrix_cache = None

    def _matrix(self, bottom):
        """H as num_labels x num_labels, on the scores' device and of their type."""
        if len(bottom) > 2:
            return bottom[2].data.reshape(self.num_labels, self.num_labels)
        xp, dtype = bottom[0].xp, bottom[0].dtype
        cache = self._matrix_cache
        if cache is None or cache[0] is not xp or cache[1] != dtype:
            matrix = xp.asarray(self.infogain.reshape(self.num_labels, self.num_labels), dtype=dtype)
            cache = self._matrix_cache = (xp, dtype, matrix)
        return cache[2]

    def _prob(self, bottom, top):
        if len(top) > 1:
            return top[1].data
        data, buf = bottom[0].data, self._prob_buf
        if buf is None or buf.shape != data.shape or buf.dtype != data.dtype or type(buf) is not type(data):
            buf = self._prob_buf = bottom[0].xp.empty_like(data)
        return buf

    def _normalizer(self):
        return normalizer(self.normalization, self.outer, self.inner, self.valid_count)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        prob = self._prob(bottom, top)
        softmax_into(bottom[0].data, self.axis, prob)
        labels = bottom[1].data.reshape(self.outer, self.inner)
        index, valid = label_indices(self.name, labels, self.num_labels, self.ignore_label)
        rows = self._matrix(bottom)[index]  # H[label] for each position: outer x inner x L
        log_prob = xp.log(xp.maximum(prob.reshape(self.outer, self.num_labels, self.inner), KLOG_THRESHOLD))
        per_position = (rows * log_prob.transpose(0, 2, 1)).sum(axis=2)
        if valid is not None:
            per_position = per_position * valid
            self.valid_count = valid.sum()
        else:
            self.valid_count = None
        set_loss(top[0], -per_position.sum(), self._normalizer())

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        prob = self._prob(bottom, top).reshape(self.outer, self.num_labels, self.inner)
        matrix = self._matrix(bottom)
        labels = bottom[1].data.reshape(self.outer, self.inner)
        index = labels.astype(xp.intp)
        valid = None if self.ignore_label is None else labels != self.ignore_label
        if valid is not None:
            index = xp.where(valid, index, 0)
        row_sums = matrix.sum(axis=1)[index]  # outer x inner
        diff = prob * row_sums[:, None, :] - matrix[index].transpose(0, 2, 1)
        if valid is not None:
            diff *= valid[:, None, :]
        diff *= loss_scale(top[0], self._normalizer())
        bottom[0].diff_to_overwrite().reshape(diff.shape)[...] = diff
