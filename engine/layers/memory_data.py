"""MemoryData: batches from arrays handed over with ``net.set_input_arrays(data, labels)``."""
import numpy

from ..errors import DataError
from ..layer import register
from .data_common import ArrayBatcher, BatchDataLayer


@register("MemoryData")
class MemoryDataLayer(BatchDataLayer):
    num_tops = 2

    def layer_setup(self, bottom, top):
        p = self.param.memory_data_param
        self.batch_size = int(p.batch_size)
        self.sample_shape = tuple(int(d) for d in (p.channels, p.height, p.width))
        if self.batch_size <= 0:
            raise DataError(f"layer '{self.name}': memory_data_param.batch_size must be > 0")
        empty = numpy.zeros((self.batch_size,) + self.sample_shape, dtype=numpy.float32)
        self.batcher = ArrayBatcher([empty, numpy.zeros(self.batch_size, numpy.float32)], self.batch_size)

    def set_arrays(self, data, labels) -> None:
        """Use ``data`` (N x C x H x W) and ``labels`` (N) from now on (pycaffe's set_input_arrays)."""
        data = numpy.asarray(data, dtype=numpy.float32)
        labels = numpy.asarray(labels, dtype=numpy.float32).reshape(-1)
        if data.shape[1:] != self.sample_shape and data[0].size == int(numpy.prod(self.sample_shape)):
            data = data.reshape((data.shape[0],) + self.sample_shape)
        if data.shape[1:] != self.sample_shape:
            raise DataError(f"layer '{self.name}': data rows must have shape {self.sample_shape}, "
                            f"got {data.shape[1:]}")
        if data.shape[0] != labels.shape[0]:
            raise DataError(f"layer '{self.name}': {data.shape[0]} data rows but {labels.shape[0]} labels")
        if data.shape[0] % self.batch_size:
            raise DataError(f"layer '{self.name}': the number of rows ({data.shape[0]}) must be a "
                            f"multiple of batch_size {self.batch_size}")
        self.batcher = ArrayBatcher([data, labels], self.batch_size)
