"""``caffe.Classifier``: a TEST net that takes images (H x W x K, as
``caffe.io.load_image`` gives) and returns class scores, with optional ten-crop
oversampling."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..net import TEST
from . import io
from ._net import Net


def image_transformer(net: Net, mean=None, input_scale=None, raw_scale=None,
                      channel_swap=None) -> io.Transformer:
    """The :class:`caffe.io.Transformer` of ``net``'s first input for H x W x K images
    (pycaffe's Classifier and Detector set it up alike)."""
    in_ = net.inputs[0]
    transformer = io.Transformer({in_: net.blobs[in_].data.shape})
    transformer.set_transpose(in_, (2, 0, 1))
    if mean is not None:
        transformer.set_mean(in_, mean)
    if input_scale is not None:
        transformer.set_input_scale(in_, input_scale)
    if raw_scale is not None:
        transformer.set_raw_scale(in_, raw_scale)
    if channel_swap is not None:
        transformer.set_channel_swap(in_, channel_swap)
    return transformer


class Classifier(Net):
    """``Classifier(model_file, pretrained_file, image_dims=None, mean=None,
    input_scale=None, raw_scale=None, channel_swap=None)``.

    ``image_dims`` is the size images are resized to before cropping (default: the
    input blob's); ``mean`` (K or K x H x W), ``input_scale``, ``raw_scale`` and
    ``channel_swap`` configure the :class:`caffe.io.Transformer` in ``self.transformer``.
    """

    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None, input_scale=None,
                 raw_scale=None, channel_swap=None):
        super().__init__(model_file, TEST, weights=pretrained_file)
        in_ = self.inputs[0]
        self.transformer = image_transformer(self, mean, input_scale, raw_scale, channel_swap)
        self.crop_dims = np.array(self.blobs[in_].data.shape[2:])
        self.image_dims = np.array(image_dims if image_dims is not None and len(image_dims) else self.crop_dims)

    def predict(self, inputs: Sequence[np.ndarray], oversample: bool = True) -> np.ndarray:
        """Class scores (N x classes) of the images: averaged over ten crops when
        ``oversample``, else from the centre crop."""
        height, width = int(self.image_dims[0]), int(self.image_dims[1])
        resized = np.zeros((len(inputs), height, width, inputs[0].shape[2]), dtype=np.float32)
        for ix, image in enumerate(inputs):
            resized[ix] = io.resize_image(image, (height, width))
        if oversample:
            crops = io.oversample(resized, self.crop_dims)
        else:
            top = int(height / 2.0 - self.crop_dims[0] / 2.0)
            left = int(width / 2.0 - self.crop_dims[1] / 2.0)
            crops = resized[:, top:top + int(self.crop_dims[0]), left:left + int(self.crop_dims[1]), :]
        in_ = self.inputs[0]
        caffe_in = np.zeros((crops.shape[0], crops.shape[3], crops.shape[1], crops.shape[2]), dtype=np.float32)
        for ix, crop in enumerate(crops):
            caffe_in[ix] = self.transformer.preprocess(in_, crop)
        batch: dict[str, Any] = {in_: caffe_in}
        predictions = self.forward_all(**batch)[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1)).mean(1)
        return predictions
