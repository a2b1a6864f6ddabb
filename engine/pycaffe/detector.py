"""``caffe.Detector``: score image windows (R-CNN style) with a TEST net.

``detect_windows([(filename, [(ymin, xmin, ymax, xmax), ...]), ...])`` crops each
window (optionally with ``context_pad`` pixels of surrounding context, padded
with the mean where the window leaves the image), warps it to the input size and
returns one ``{'window', 'prediction', 'filename'}`` dict per window.
Selective-search proposals need BVLC's external MATLAB tool and are refused.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import NetDefinitionError
from ..net import TEST
from . import io
from ._net import Net
from .classifier import image_transformer


class Detector(Net):
    """``Detector(model_file, pretrained_file, mean=None, input_scale=None,
    raw_scale=None, channel_swap=None, context_pad=None)``."""

    def __init__(self, model_file, pretrained_file, mean=None, input_scale=None, raw_scale=None,
                 channel_swap=None, context_pad=None):
        super().__init__(model_file, TEST, weights=pretrained_file)
        self.transformer = image_transformer(self, mean, input_scale, raw_scale, channel_swap)
        self.configure_crop(context_pad)

    def detect_windows(self, images_windows: Sequence[tuple[str, Sequence[Sequence[int]]]]) -> list[dict]:
        """The net's output for every window of every image."""
        crops: list[np.ndarray] = []
        for filename, windows in images_windows:
            image = io.load_image(filename).astype(np.float32)
            crops.extend(self.crop(image, window) for window in windows)
        in_ = self.inputs[0]
        caffe_in = np.zeros((len(crops), crops[0].shape[2]) + tuple(self.blobs[in_].data.shape[2:]),
                            dtype=np.float32)
        for ix, crop in enumerate(crops):
            caffe_in[ix] = self.transformer.preprocess(in_, crop)
        batch: dict[str, Any] = {in_: caffe_in}
        predictions = self.forward_all(**batch)[self.outputs[0]]
        detections, ix = [], 0
        for filename, windows in images_windows:
            for window in windows:
                detections.append({"window": window, "prediction": predictions[ix], "filename": filename})
                ix += 1
        return detections

    def detect_selective_search(self, image_fnames: Sequence[str]) -> list[dict]:
        raise NetDefinitionError("Detector.detect_selective_search needs BVLC's selective_search_ijcv_with_python "
                                 "(MATLAB); compute the windows elsewhere and call detect_windows")

    def crop(self, im: np.ndarray, window: Sequence[int]) -> np.ndarray:
        """The window (ymin, xmin, ymax, xmax) of ``im``, with context padding if configured."""
        ymin, xmin, ymax, xmax = (int(v) for v in window)
        if not self.context_pad:
            return im[ymin:ymax, xmin:xmax]
        crop_size = int(self.blobs[self.inputs[0]].width)  # square input assumed, as BVLC
        scale = crop_size / (1.0 * crop_size - self.context_pad * 2)
        half_h, half_w = (ymax - ymin + 1) / 2.0, (xmax - xmin + 1) / 2.0
        centre = np.array((ymin + half_h, xmin + half_w))
        box = np.round(np.tile(centre, 2) + scale * np.array((-half_h, -half_w, half_h, half_w)))
        scale_h = crop_size / (box[2] - box[0] + 1)
        scale_w = crop_size / (box[3] - box[1] + 1)
        pad_y = int(round(max(0.0, -box[0]) * scale_h))
        pad_x = int(round(max(0.0, -box[1]) * scale_w))
        im_h, im_w = im.shape[:2]
        box = np.clip(box, 0.0, [im_h, im_w, im_h, im_w]).astype(int)
        crop_h = min(int(round((box[2] - box[0] + 1) * scale_h)), crop_size - pad_y)
        crop_w = min(int(round((box[3] - box[1] + 1) * scale_w)), crop_size - pad_x)
        context = io.resize_image(im[box[0]:box[2], box[1]:box[3]], (crop_h, crop_w))
        padded = np.ones(tuple(self.crop_dims), dtype=np.float32) * self.crop_mean
        padded[pad_y:pad_y + crop_h, pad_x:pad_x + crop_w] = context
        return padded

    def configure_crop(self, context_pad) -> None:
        """Crop size (H x W x K of the input) and, for context padding, the mean in image space."""
        in_ = self.inputs[0]
        channels, height, width = self.blobs[in_].data.shape[1:]
        self.crop_dims = np.array((height, width, channels))
        self.context_pad = context_pad
        if not context_pad:
            return
        mean = self.transformer.mean.get(in_)
        if mean is None:
            self.crop_mean = np.zeros(tuple(self.crop_dims), dtype=np.float32)
            return
        crop_mean = np.broadcast_to(mean, (channels, height, width)).transpose(1, 2, 0).astype(np.float32)
        swap = self.transformer.channel_swap.get(in_)
        if swap is not None:
            crop_mean = crop_mean[:, :, np.argsort(swap)]
        raw_scale = self.transformer.raw_scale.get(in_)
        self.crop_mean = crop_mean / raw_scale if raw_scale is not None else crop_mean
