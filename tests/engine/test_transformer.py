"""Caffe's DataTransformer: (pixel - mean) * scale, crop (centre / random), mirror, checks."""
from __future__ import annotations

import numpy
import pytest

import engine
from engine import rng
from engine.datatools import write_mean_file
from engine.errors import DataError, NetDefinitionError
from engine.proto import caffe_pb2
from engine.transformer import DataTransformer

F32 = numpy.float32


def make(phase=engine.TRAIN, **fields) -> DataTransformer:
    param = caffe_pb2.TransformationParameter()
    for name, value in fields.items():
        if name == "mean_value":
            param.mean_value.extend(value)
        else:
            setattr(param, name, value)
    return DataTransformer(param, phase, "layer 'test'")


def caffe_loop(image, out_hw, h_off, w_off, mirror, scale, mean_image=None, mean_values=None):
    """Caffe's DataTransformer::Transform(const Datum&, Dtype*) element by element, in float32."""
    channels, height, width = image.shape
    out_h, out_w = out_hw
    out = numpy.zeros((channels, out_h, out_w), F32)
    for c in range(channels):
        for h in range(out_h):
            for w in range(out_w):
                top_w = out_w - 1 - w if mirror else w
                pixel = F32(image[c, h_off + h, w_off + w])
                if mean_image is not None:
                    value = (pixel - F32(mean_image[c, h_off + h, w_off + w])) * F32(scale)
                elif mean_values is not None:
                    value = (pixel - F32(mean_values[c])) * F32(scale)
                else:
                    value = pixel * F32(scale)
                out[c, h, top_w] = value
    return out


@pytest.fixture
def images():
    return numpy.random.default_rng(3).integers(0, 256, (4, 3, 7, 9), dtype=numpy.uint8)


def test_scale_and_per_channel_mean_values(images):
    t = make(scale=0.017, mean_value=[104.0, 117.0, 123.5])
    out = t.transform(images)
    for i in range(len(images)):
        expected = caffe_loop(images[i], (7, 9), 0, 0, False, 0.017, mean_values=[104.0, 117.0, 123.5])
        numpy.testing.assert_array_equal(out[i], expected)


def test_one_mean_value_serves_every_channel_and_scale_alone(images):
    out = make(mean_value=[100.0]).transform(images)
    numpy.testing.assert_array_equal(out[1], caffe_loop(images[1], (7, 9), 0, 0, False, 1.0,
                                                        mean_values=[100.0] * 3))
    out = make(scale=0.00390625).transform(images)
    numpy.testing.assert_array_equal(out[2], caffe_loop(images[2], (7, 9), 0, 0, False, 0.00390625))


def test_centre_crop_in_test_shifts_the_mean_file_too(tmp_path, images):
    mean = numpy.random.default_rng(4).uniform(0, 255, (3, 7, 9)).astype(F32)
    write_mean_file(mean[None], tmp_path / "mean.binaryproto")
    t = make(engine.TEST, crop_size=4, scale=0.5, mean_file=str(tmp_path / "mean.binaryproto"))
    out = t.transform(images)
    assert out.shape == (4, 3, 4, 4)
    h_off, w_off = (7 - 4) // 2, (9 - 4) // 2
    for i in range(len(images)):
        numpy.testing.assert_array_equal(out[i], caffe_loop(images[i], (4, 4), h_off, w_off, False, 0.5,
                                                            mean_image=mean))


def test_random_crops_and_mirrors_in_train_are_caffe_crops_and_repeat_with_the_seed(images):
    rng.set_seed(11)
    t = make(engine.TRAIN, crop_size=5, mirror=True, mean_value=[10, 20, 30])
    many = numpy.repeat(images[:1], 40, axis=0)
    out = t.transform(many)
    seen = set()
    for i in range(len(many)):
        matches = [(h, w, m) for h in range(3) for w in range(5) for m in (False, True)
                   if numpy.array_equal(out[i], caffe_loop(many[i], (5, 5), h, w, m, 1.0,
                                                           mean_values=[10, 20, 30]))]
        assert len(matches) == 1, f"image {i} is not one crop of its input"
        seen.add(matches[0])
    assert len(seen) > 10  # offsets and flips really vary
    rng.set_seed(11)
    again = make(engine.TRAIN, crop_size=5, mirror=True, mean_value=[10, 20, 30]).transform(many)
    numpy.testing.assert_array_equal(out, again)


def test_mirror_is_random_in_test_as_in_caffe(images):
    rng.set_seed(5)
    t = make(engine.TEST, mirror=True)
    many = numpy.repeat(images[:1], 30, axis=0)
    out = t.transform(many)
    flipped = [numpy.array_equal(o, many[0][:, :, ::-1].astype(F32)) for o in out]
    kept = [numpy.array_equal(o, many[0].astype(F32)) for o in out]
    assert all(a or b for a, b in zip(flipped, kept)) and any(flipped) and any(kept)


def test_no_random_stream_is_drawn_without_mirror_or_train_crop():
    rng.set_seed(7)
    before = rng.get_state()
    make(engine.TEST, crop_size=3, scale=2.0)
    make(engine.TRAIN, scale=2.0)
    assert rng.get_state() == before
    make(engine.TRAIN, crop_size=3)
    assert rng.get_state() != before


def test_float_pixels_are_transformed_like_bytes(images):
    floats = images.astype(F32) + F32(0.25)
    out = make(scale=2.0, mean_value=[1.5]).transform(floats)
    numpy.testing.assert_array_equal(out[0], caffe_loop(floats[0], (7, 9), 0, 0, False, 2.0,
                                                        mean_values=[1.5] * 3))


def test_refusals_name_the_layer(tmp_path, images):
    write_mean_file(numpy.zeros((1, 3, 7, 9), F32), tmp_path / "m.binaryproto")
    with pytest.raises(NetDefinitionError, match="layer 'test'.*mean_file and mean_value"):
        make(mean_file=str(tmp_path / "m.binaryproto"), mean_value=[1.0])
    with pytest.raises(NetDefinitionError, match="force_color and force_gray"):
        make(force_color=True, force_gray=True)
    with pytest.raises(DataError, match="either 1 mean_value or as many as channels"):
        make(mean_value=[1.0, 2.0]).transform(images)
    with pytest.raises(DataError, match="crop_size 8 is larger"):
        make(crop_size=8).transform(images)
    write_mean_file(numpy.zeros((1, 3, 5, 5), F32), tmp_path / "small.binaryproto")
    with pytest.raises(DataError, match=r"mean_file image has shape \(3, 5, 5\)"):
        make(mean_file=str(tmp_path / "small.binaryproto")).transform(images)
    with pytest.raises(DataError, match="missing.binaryproto"):
        make(mean_file=str(tmp_path / "missing.binaryproto"))
