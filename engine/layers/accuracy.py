"""Accuracy: the fraction of labelled positions whose label is among the ``top_k`` scores.

Scores are split as outer x C x inner around ``axis`` (N x C x H x W scores take
N x H x W labels). As in Caffe 1.0 a label is correct when fewer than ``top_k`` other
classes score at least as high as it (a tie counts against it). Positions labelled
``ignore_label`` do not count; no position at all gives 0. An optional second top holds
the accuracy of each class over the positions of that class (0 for a class absent from
the batch). No backward.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register
from .loss_common import ignore_label_of, label_indices, label_positions


@register("Accuracy")
class AccuracyLayer(Layer):
    num_bottoms = 2
    min_tops = 1

    def allow_force_backward(self, bottom_index: int) -> bool:
        return False

    def layer_setup(self, bottom, top):
        if len(top) > 2:
            raise NetDefinitionError(f"layer '{self.name}' (Accuracy): produces one or two tops, got {len(top)}")
        p = self.param.accuracy_param
        self.top_k = int(p.top_k)
        if self.top_k < 1:
            raise NetDefinitionError(f"layer '{self.name}': accuracy_param.top_k must be >= 1, got {self.top_k}")
        self.ignore_label = ignore_label_of(p)
        self.axis = bottom[0].canonical_axis(p.axis)

    def reshape(self, bottom, top):
        self.axis = bottom[0].canonical_axis(self.param.accuracy_param.axis)
        self.outer, self.inner, self.num_classes = label_positions(self, bottom, self.axis)
        if self.top_k > self.num_classes:
            raise ShapeError(f"layer '{self.name}': top_k {self.top_k} exceeds the "
                             f"{self.num_classes} classes of bottom {self.bottom_name(0)} {bottom[0].shape}")
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((self.num_classes,))

    def forward(self, bottom, top):
        xp = bottom[0].xp
        scores = bottom[0].data.reshape(self.outer, self.num_classes, self.inner)
        labels = bottom[1].data.reshape(self.outer, self.inner)
        index, valid = label_indices(self.name, labels, self.num_classes, self.ignore_label)
        true_score = xp.take_along_axis(scores, index[:, None, :], axis=1)
        at_least = (scores >= true_score).sum(axis=1)  # the true class itself included
        correct = at_least <= self.top_k
        dtype = top[0].dtype
        if valid is not None:
            correct &= valid
            count = xp.maximum(valid.sum(), 1).astype(dtype)  # stays on the device
        else:
            count = dtype.type(max(self.outer * self.inner, 1))
        top[0].data[...] = correct.sum().astype(dtype) / count
        if len(top) > 1:
            self._per_class(xp, index, valid, correct, top[1])

    def _per_class(self, xp, index, valid, correct, top_blob) -> None:
        """Hits / positions of each class, 0 where a class has no position."""
        counted = index.ravel() if valid is None else index[valid]
        total = xp.bincount(counted, minlength=self.num_classes)
        hits = xp.bincount(index[correct], minlength=self.num_classes)
        dtype = top_blob.dtype
        top_blob.data[...] = hits.astype(dtype) / xp.maximum(total, 1).astype(dtype)

    def backward(self, top, propagate_down, bottom):
        """No gradient (Caffe's is NOT_IMPLEMENTED): a forced backward sends nothing down."""
