"""``caffe.io``: images in and out of nets, and arrays to and from Caffe's protos.

As BVLC's ``caffe/io.py``, with Pillow and numpy instead of scikit-image and
SciPy: ``load_image`` gives float32 in [0, 1], H x W x 3 (RGB) or H x W x 1 (grey,
with scikit-image's luminance weights); ``resize_image`` resamples each channel
with Pillow (order 0 nearest, 1 bilinear, 2-3 bicubic, higher Lanczos), so
resized values can differ slightly from scikit-image's.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..proto import caffe_pb2 as _caffe_pb2

caffe_pb2: Any = _caffe_pb2  # a generated module: no static types

# scikit-image's rgb2gray weights (what BVLC's load_image(color=False) applies)
_GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float64)


# -- protos -------------------------------------------------------------------
def blobproto_to_array(blob: Any, return_diff: bool = False) -> np.ndarray:
    """The values (or diff) of a BlobProto as an array of its shape (the legacy
    num/channels/height/width when any of them is set)."""
    values = np.array(blob.diff if return_diff else blob.data)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return values.reshape(blob.num, blob.channels, blob.height, blob.width)
    return values.reshape(tuple(blob.shape.dim))


def array_to_blobproto(arr: np.ndarray, diff: np.ndarray | None = None) -> Any:
    """A BlobProto holding ``arr`` (and ``diff``), with its shape."""
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(int(d) for d in arr.shape)
    blob.data.extend(arr.astype(float).flat)
    if diff is not None:
        blob.diff.extend(np.asarray(diff).astype(float).flat)
    return blob


def arraylist_to_blobprotovector_str(arraylist: Sequence[np.ndarray]) -> bytes:
    """A serialized BlobProtoVector of the arrays."""
    vector = caffe_pb2.BlobProtoVector()
    vector.blobs.extend(array_to_blobproto(a) for a in arraylist)
    return vector.SerializeToString()


def blobprotovector_str_to_arraylist(serialized: bytes) -> list[np.ndarray]:
    """The arrays of a serialized BlobProtoVector."""
    vector = caffe_pb2.BlobProtoVector()
    vector.ParseFromString(serialized)
    return [blobproto_to_array(b) for b in vector.blobs]


def array_to_datum(arr: np.ndarray, label: int | None = None) -> Any:
    """A Datum of a C x H x W array: bytes for uint8, float_data otherwise."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"array_to_datum needs a 3-d (C x H x W) array, got shape {arr.shape}")
    datum = caffe_pb2.Datum(channels=arr.shape[0], height=arr.shape[1], width=arr.shape[2])
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(float).flat)
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum: Any) -> np.ndarray:
    """The C x H x W array of a (raw, not encoded) Datum: uint8 or float."""
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape).copy()
    return np.array(datum.float_data).astype(float).reshape(shape)


# -- images -------------------------------------------------------------------
def _image_as_float(image) -> np.ndarray:
    """Pillow image -> float array in [0, 1] (scikit-image's img_as_float)."""
    if image.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image, dtype=np.float64) / 65535.0
    if image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        return array / 65535.0 if image.mode == "I" else array
    if image.mode not in ("L", "RGB", "RGBA", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return np.asarray(image, dtype=np.float64) / 255.0


def load_image(filename: str, color: bool = True) -> np.ndarray:
    """An image file as float32 in [0, 1]: H x W x 3 (RGB, ``color``) or H x W x 1."""
    from PIL import Image

    with Image.open(filename) as image:
        image.load()
        array = _image_as_float(image)
    if array.ndim == 3:
        if array.shape[2] in (2, 4):  # drop alpha
            array = array[:, :, :-1]
        if not color:
            array = array @ _GREY_WEIGHTS if array.shape[2] == 3 else array[:, :, 0]
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
        if color:
            array = np.tile(array, (1, 1, 3))
    return array.astype(np.float32)


def _pillow_filter(interp_order: int):
    from PIL import Image

    filters = {0: Image.Resampling.NEAREST, 1: Image.Resampling.BILINEAR,
               2: Image.Resampling.BICUBIC, 3: Image.Resampling.BICUBIC}
    return filters.get(int(interp_order), Image.Resampling.LANCZOS)


def resize_image(im: np.ndarray, new_dims: Sequence[int], interp_order: int = 1) -> np.ndarray:
    """``im`` (H x W x K) resized to ``new_dims`` (height, width), every channel
    resampled alike; float32."""
    from PIL import Image

    im = np.asarray(im)
    height, width = int(new_dims[0]), int(new_dims[1])
    if im.ndim != 3:
        raise ValueError(f"resize_image needs an H x W x K array, got shape {im.shape}")
    if im.size and im.min() == im.max():  # a constant image stays that constant
        return np.full((height, width, im.shape[2]), im.flat[0], dtype=np.float32)
    resample = _pillow_filter(interp_order)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(im[:, :, k], dtype=np.float32), mode="F")
                           .resize((width, height), resample), dtype=np.float32)
                for k in range(im.shape[2])]
    return np.stack(channels, axis=2)


def oversample(images: Sequence[np.ndarray] | np.ndarray, crop_dims: Sequence[int]) -> np.ndarray:
    """Ten crops of each H x W x K image: the four corners and the centre, then the
    same five mirrored left-right; (10 * N) x crop_h x crop_w x K float32."""
    first = np.asarray(images[0])
    crop_h, crop_w = int(crop_dims[0]), int(crop_dims[1])
    height, width = first.shape[:2]
    centre_top = int(height / 2.0 - crop_h / 2.0)
    centre_left = int(width / 2.0 - crop_w / 2.0)
    corners = [(0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w),
               (centre_top, centre_left)]
    crops = np.empty((10 * len(images), crop_h, crop_w, first.shape[-1]), dtype=np.float32)
    index = 0
    for image in images:
        for top, left in corners:
            crops[index] = image[top:top + crop_h, left:left + crop_w, :]
            index += 1
        crops[index:index + 5] = crops[index - 5:index, :, ::-1, :]
        index += 5
    return crops


# -- Transformer ----------------------------------------------------------------
class Transformer:
    """Turn images (H x W x K, as load_image gives) into net input (K x H x W) and back.

    ``inputs`` maps input blob names to their shapes, e.g.
    ``Transformer({'data': net.blobs['data'].data.shape})``. preprocess does, in
    order: float32, resize to the input's H x W, transpose, channel swap, raw
    scale, mean subtraction, input scale; deprocess undoes them in reverse.
    """

    def __init__(self, inputs: dict):
        self.inputs = {name: tuple(int(d) for d in shape) for name, shape in inputs.items()}
        self.transpose: dict[str, tuple] = {}
        self.channel_swap: dict[str, tuple] = {}
        self.raw_scale: dict[str, float] = {}
        self.mean: dict[str, np.ndarray] = {}
        self.input_scale: dict[str, float] = {}

    def _check_input(self, in_: str) -> None:
        if in_ not in self.inputs:
            raise KeyError(f"{in_} is not one of the net inputs: {list(self.inputs)}")

    def preprocess(self, in_: str, data: np.ndarray) -> np.ndarray:
        """An image as input ``in_`` of the net wants it."""
        self._check_input(in_)
        caffe_in = np.asarray(data).astype(np.float32, copy=False)
        in_dims = self.inputs[in_][2:]
        if tuple(caffe_in.shape[:2]) != tuple(in_dims):
            caffe_in = resize_image(caffe_in, in_dims)
        else:
            caffe_in = caffe_in.copy()
        if in_ in self.transpose:
            caffe_in = caffe_in.transpose(self.transpose[in_])
        if in_ in self.channel_swap:
            caffe_in = caffe_in[list(self.channel_swap[in_]), :, :]
        if in_ in self.raw_scale:
            caffe_in *= self.raw_scale[in_]
        if in_ in self.mean:
            caffe_in -= self.mean[in_]
        if in_ in self.input_scale:
            caffe_in *= self.input_scale[in_]
        return caffe_in

    def deprocess(self, in_: str, data: np.ndarray) -> np.ndarray:
        """Undo preprocess (except the resize): net input back to an image."""
        self._check_input(in_)
        decaf_in = np.array(data, copy=True).squeeze()
        if in_ in self.input_scale:
            decaf_in /= self.input_scale[in_]
        if in_ in self.mean:
            decaf_in += self.mean[in_]
        if in_ in self.raw_scale:
            decaf_in /= self.raw_scale[in_]
        if in_ in self.channel_swap:
            decaf_in = decaf_in[np.argsort(self.channel_swap[in_]), :, :]
        if in_ in self.transpose:
            decaf_in = decaf_in.transpose(np.argsort(self.transpose[in_]))
        return decaf_in

    def set_transpose(self, in_: str, order: Sequence[int]) -> None:
        """Axis order applied to the image, e.g. (2, 0, 1) for H x W x K -> K x H x W."""
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError("Transpose order needs to have the same number of dimensions as the input.")
        self.transpose[in_] = tuple(order)

    def set_channel_swap(self, in_: str, order: Sequence[int]) -> None:
        """Channel order after transposing, e.g. (2, 1, 0) for RGB -> BGR."""
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError("Channel swap needs to have the same number of dimensions as the input channels.")
        self.channel_swap[in_] = tuple(order)

    def set_raw_scale(self, in_: str, scale: float) -> None:
        """Multiply the image by ``scale`` (e.g. 255 for [0, 1] images and [0, 255] models)."""
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_: str, mean: np.ndarray) -> None:
        """Subtract ``mean``: one value per channel (K) or a whole K x H x W mean."""
        self._check_input(in_)
        mean = np.asarray(mean)
        if mean.ndim == 1:
            if mean.shape[0] != self.inputs[in_][1]:
                raise ValueError("Mean channels incompatible with input.")
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            shape = (1,) + mean.shape if mean.ndim == 2 else mean.shape
            if len(shape) != 3:
                raise ValueError("Mean shape invalid")
            if shape != self.inputs[in_][1:]:
                raise ValueError("Mean shape incompatible with input shape.")
        self.mean[in_] = mean

    def set_input_scale(self, in_: str, scale: float) -> None:
        """Multiply the mean-subtracted input by ``scale``."""
        self._check_input(in_)
        self.input_scale[in_] = scale
