"""Accuracy: fraction of samples whose label is among the top_k scores (no backward)."""
from ..errors import ShapeError
from ..layer import Layer, register
from .softmax_with_loss import check_labels


@register("Accuracy")
class AccuracyLayer(Layer):
    num_bottoms = 2
    min_tops = 1

    def allow_force_backward(self, bottom_index: int) -> bool:
        return False

    def layer_setup(self, bottom, top):
        p = self.param.accuracy_param
        self.top_k = int(p.top_k)
        self.ignore_label = int(p.ignore_label) if p.HasField("ignore_label") else None
        self.axis = bottom[0].canonical_axis(p.axis)

    def reshape(self, bottom, top):
        self.outer = bottom[0].count(0, self.axis)
        self.inner = bottom[0].count(self.axis + 1)
        self.num_classes = bottom[0].shape[self.axis]
        if self.top_k > self.num_classes:
            raise ShapeError(f"layer '{self.name}': top_k {self.top_k} exceeds the "
                             f"{self.num_classes} classes of bottom {bottom[0].shape}")
        if bottom[1].count() != self.outer * self.inner:
            raise ShapeError(f"layer '{self.name}': {self.outer * self.inner} labels expected for scores "
                             f"{self.bottom_name(0)} of shape {bottom[0].shape}, label blob "
                             f"{self.bottom_name(1)} has shape {bottom[1].shape}")
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((self.num_classes,))

    def forward(self, bottom, top):
        xp = bottom[0].xp
        scores = bottom[0].data.reshape(self.outer, self.num_classes, self.inner)
        labels = bottom[1].data.reshape(self.outer, self.inner)
        check_labels(self.name, labels, self.num_classes, self.ignore_label)
        index = labels.astype(xp.intp)
        if self.ignore_label is not None:
            index = xp.where(labels != self.ignore_label, index, 0)
        true_score = xp.take_along_axis(scores, index[:, None, :], axis=1)
        # Caffe 1.0 counts every score >= the true class's (itself included) and calls the
        # label correct when at most top_k do: a tie counts against the true class.
        at_least = (scores >= true_score).sum(axis=1)
        correct = at_least <= self.top_k
        valid = xp.ones_like(correct) if self.ignore_label is None else labels != self.ignore_label
        count = int(valid.sum())
        top[0].data[...] = float((correct & valid).sum()) / max(count, 1)
        if len(top) > 1:
            per_class_total = xp.bincount(index[valid].ravel(), minlength=self.num_classes)
            per_class_hit = xp.bincount(index[valid & correct].ravel(), minlength=self.num_classes)
            top[1].data[...] = per_class_hit / xp.maximum(per_class_total, 1)
