"""ImageData: images named in a list file, as Caffe's ImageDataLayer.

``image_data_param { source root_folder batch_size new_height new_width
is_color shuffle rand_skip }`` and ``transform_param``. Each line of
``source`` is ``path label``: the label follows the *last* space (names may
contain spaces, as Caffe's ``find_last_of(' ')``); the file read is
``root_folder + path`` (without a ``root_folder``, names not found from the
working directory, Caffe's base, are read beside the list file). Colour images
come out in BGR order (OpenCV's).

Differences from Caffe, by design: images are decoded by Pillow and resized
(``new_height`` and ``new_width`` both > 0) with Pillow's bilinear filter,
where Caffe uses OpenCV's ``cv::resize`` (bilinear from the 2 x 2 nearest
pixels, no averaging when shrinking), so resized pixels differ slightly (see
:mod:`engine.datatools`). At setup the layer takes values from Caffe's stream
(:func:`engine.rng.caffe_stream`) in Caffe's order: the transformer's seed, the
shuffle's seed, then ``caffe_rng_rand() % rand_skip``, so ``rand_skip`` skips
what Caffe skips. ``shuffle`` is Caffe's own: ``prefetch_rng_`` is a boost mt19937
seeded with that value (:class:`engine.caffe_rng.CaffeStream`) and the list is
shuffled with ``caffe::shuffle`` (:func:`engine.caffe_rng.caffe_shuffle`) at setup
and again each time the last line has been read, so the order of the lines is
Caffe's. Every image must have the shape of the first (set
``new_height``/``new_width`` for images of several sizes).
Batches are prefetched on a background thread as the Data layer's are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy

from .. import datatools, rng
from ..caffe_rng import CaffeStream, caffe_shuffle, saved_stream_state
from ..errors import DataError, NetDefinitionError
from ..layer import register
from ..transformer import DataTransformer
from .data import Batch, PrefetchingDataLayer, _json_bytes, _json_value, transform_param_of


@dataclass(frozen=True)
class ListPosition:
    line: int                     # index into ``order`` of the next image
    order: numpy.ndarray          # the (shuffled) order of the list's lines; never changed in place
    shuffle_random: dict | None   # the shuffle stream
    transform_random: dict | None


@register("ImageData")
class ImageDataLayer(PrefetchingDataLayer):

    def layer_setup(self, bottom, top):
        p = self.param.image_data_param
        where = f"layer '{self.name}' (ImageData)"
        if not p.source:
            raise NetDefinitionError(f"{where}: image_data_param.source is not set")
        self.batch_size = int(p.batch_size)
        if self.batch_size <= 0:
            raise NetDefinitionError(f"{where}: image_data_param.batch_size must be > 0")
        self.where = f"{where}, list '{p.source}'"
        self.entries = datatools.read_image_list(p.source)
        self.root_folder = self._root_folder(p)
        self.new_height, self.new_width = int(p.new_height), int(p.new_width)
        if (self.new_height > 0) != (self.new_width > 0):
            raise NetDefinitionError(f"{where}: set both new_height and new_width, or neither "
                                     f"(got {self.new_height} x {self.new_width})")
        self.is_color = bool(p.is_color)
        self.shuffle = bool(p.shuffle)
        self.transformer = DataTransformer(transform_param_of(self.param, p), self.phase, where)
        order = numpy.arange(len(self.entries))
        self.shuffle_generator: CaffeStream | None = None
        if self.shuffle:
            self.shuffle_generator = CaffeStream(rng.caffe_stream().rand())
            order = self._shuffled(order)
        line = 0
        if p.rand_skip:
            line = rng.caffe_stream().rand() % int(p.rand_skip)
            if line >= len(self.entries):
                raise DataError(f"{self.where}: rand_skip drew {line} but the list has only "
                                f"{len(self.entries)} images (not enough points to skip)")
        first = self._read(int(order[line]))
        self.record_shape = first.shape
        self.transformer.check_input(self.record_shape)
        self._caffe_prefetch_setup_draws()
        self._start_reading(ListPosition(line, order, self._shuffle_state(), self.transformer.random_state()))

    def _root_folder(self, p) -> str:
        """``root_folder`` as given; without one, names that are not found from the working
        directory (Caffe's base) are looked up beside the list file."""
        if p.root_folder:
            return p.root_folder
        first = self.entries[0].name
        beside = os.path.join(os.path.dirname(os.path.abspath(p.source)), "")
        if not os.path.isabs(first) and not os.path.exists(first) and os.path.exists(beside + first):
            return beside
        return ""

    def reshape(self, bottom, top):
        top[0].reshape((self.batch_size,) + self.transformer.output_shape(*self.record_shape))
        if len(top) > 1:
            top[1].reshape((self.batch_size,))

    def _shuffle_state(self) -> dict | None:
        return None if self.shuffle_generator is None else self.shuffle_generator.state()

    def _shuffled(self, order: numpy.ndarray) -> numpy.ndarray:
        """A new array: ``order`` through Caffe's ShuffleImages (``prefetch_rng_``)."""
        assert self.shuffle_generator is not None
        lines = order.tolist()
        caffe_shuffle(lines, self.shuffle_generator)
        return numpy.asarray(lines, dtype=numpy.intp)

    def _read(self, index: int) -> numpy.ndarray:
        """Image ``index`` of the list as C x H x W uint8."""
        entry = self.entries[index]
        path = self.root_folder + entry.name
        image = datatools.read_image(path, self.new_height, self.new_width, self.is_color,
                                     where=f"{self.where}: image '{path}'")
        return image.transpose(2, 0, 1)

    # -- loading (on the prefetch thread) ---------------------------------------
    def _load(self, position: ListPosition) -> Batch:
        pixels = numpy.empty((self.batch_size,) + self.record_shape, numpy.uint8)
        labels = numpy.empty(self.batch_size, numpy.float32)
        line, order = position.line, position.order
        for i in range(self.batch_size):
            index = int(order[line])
            image = self._read(index)
            if image.shape != self.record_shape:
                raise DataError(f"{self.where}: image '{self.root_folder + self.entries[index].name}' has shape "
                                f"{image.shape} (C x H x W) but the first has {self.record_shape}; set "
                                f"new_height and new_width to resize them all")
            pixels[i] = image
            labels[i] = self.entries[index].label
            line += 1
            if line == len(order):
                line = 0
                if self.shuffle_generator is not None:
                    order = self._shuffled(order)
        data = self.transformer.transform(pixels)
        return Batch(data, labels, ListPosition(line, order, self._shuffle_state(),
                                                self.transformer.random_state()))

    # -- position, for snapshots ----------------------------------------------
    def _state_of(self, position: ListPosition) -> dict:
        state = {"line": position.line, "order": position.order.copy()}
        if position.shuffle_random is not None:
            state["shuffle_rng"] = _json_bytes(position.shuffle_random)
        if position.transform_random is not None:
            state["transform_rng"] = _json_bytes(position.transform_random)
        return state

    def _position_from(self, state: dict) -> ListPosition:
        try:
            line = int(state["line"])
            order = numpy.asarray(state["order"], dtype=numpy.intp).reshape(-1)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{self.where}: the saved position is not an ImageData layer's "
                            f"(it has {', '.join(sorted(state))})") from None
        count = len(self.entries)
        if len(order) != count or not 0 <= line < count or sorted(order.tolist()) != list(range(count)):
            raise DataError(f"{self.where}: the saved position (line {line} of {len(order)}) does not fit "
                            f"the list, which has {count} images")
        shuffle_random = _json_value(state["shuffle_rng"]) if "shuffle_rng" in state else None
        transform_random = _json_value(state["transform_rng"]) if "transform_rng" in state else None
        return ListPosition(line, order, self._checked_shuffle_state(shuffle_random),
                            self.transformer.checked_random_state(transform_random))

    def _checked_shuffle_state(self, state) -> dict | None:
        """A saved shuffle stream to go to, or None to leave it where it is (no shuffle,
        nothing saved, or a numpy stream's state saved before the shuffle was Caffe's)."""
        return None if self.shuffle_generator is None else saved_stream_state(state, self.where, "shuffle")

    def _restore_position(self, position: ListPosition) -> None:
        if self.shuffle_generator is not None and position.shuffle_random is not None:
            self.shuffle_generator.set_state(position.shuffle_random)
        self.transformer.set_random_state(position.transform_random)
