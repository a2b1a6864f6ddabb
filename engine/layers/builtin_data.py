"""BuiltinData (a Backprop Studio extension): the built-in teaching datasets.

``builtin_data_param { dataset: "spiral" num_points: 300 noise: 0.1 seed: 1
batch_size: 32 test_fraction: 0.2 }`` serves the train split in the TRAIN phase
and the test split in the TEST phase; no files needed.
"""
from .. import datasets
from ..errors import DataError
from ..layer import register
from ..validate import require_memory, shape_bytes
from .data_common import ArrayBatcher, BatchDataLayer

TRAIN = 0


@register("BuiltinData")
class BuiltinDataLayer(BatchDataLayer):
    min_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.builtin_data_param
        require_memory(shape_bytes((p.num_points, 2), 8) * 4, f"{p.num_points} points of '{p.dataset}'")
        try:
            data, labels = datasets.load(p.dataset, num_points=p.num_points, noise=p.noise,
                                         num_classes=p.num_classes, seed=p.seed)
        except (KeyError, ValueError) as exc:
            raise DataError(f"layer '{self.name}': {exc}") from None
        try:
            train, test = datasets.split(data, labels, p.test_fraction, p.seed)
        except ValueError as exc:
            raise DataError(f"layer '{self.name}': {exc}") from None
        arrays = train if self.phase == TRAIN or p.test_fraction <= 0 else test
        if len(top) > 2:
            raise DataError(f"layer '{self.name}': BuiltinData has at most two tops (data, label)")
        if arrays[0].shape[0] == 0:
            split = "train" if arrays is train else "test"
            raise DataError(f"layer '{self.name}': the {split} split of '{p.dataset}' has no rows "
                            f"(num_points {p.num_points}, test_fraction {p.test_fraction:g})")
        batch = int(p.batch_size) or arrays[0].shape[0]
        self.dataset = (data, labels)
        self.batcher = ArrayBatcher(list(arrays[:len(top)]), batch, shuffle=p.shuffle)
