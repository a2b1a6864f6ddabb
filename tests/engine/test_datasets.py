"""Built-in teaching datasets: seeded, shaped and labelled as documented."""
import numpy
import pytest

import engine
from engine import datasets

GENERATED = ["spiral", "xor", "circles", "blobs"]


@pytest.mark.parametrize("name", GENERATED)
def test_generators_are_seeded(name):
    a = datasets.load(name, num_points=120, noise=0.1, num_classes=3, seed=3)
    b = datasets.load(name, num_points=120, noise=0.1, num_classes=3, seed=3)
    c = datasets.load(name, num_points=120, noise=0.1, num_classes=3, seed=4)
    assert numpy.array_equal(a[0], b[0]) and numpy.array_equal(a[1], b[1])
    assert not numpy.array_equal(a[0], c[0])


@pytest.mark.parametrize("name,classes", [("spiral", 3), ("xor", 2), ("circles", 2), ("blobs", 3)])
def test_generated_points_are_2d_float32_with_balanced_integer_labels(name, classes):
    data, labels = datasets.load(name, num_points=120, noise=0.1, num_classes=classes, seed=1)
    assert data.dtype == numpy.float32 and labels.dtype == numpy.float32
    assert data.ndim == 2 and data.shape[1] == 2 and data.shape[0] == labels.shape[0] == 120
    assert numpy.array_equal(labels, numpy.round(labels))
    values, counts = numpy.unique(labels, return_counts=True)
    assert values.tolist() == list(range(classes))
    assert counts.max() - counts.min() <= 1
    assert numpy.isfinite(data).all()


def test_spiral_uses_whole_arms_per_class():
    data, labels = datasets.spiral(num_points=100, num_classes=4, seed=2)
    assert len(labels) == 4 * (100 // 4)
    radius = numpy.hypot(data[:, 0], data[:, 1])
    assert radius.min() >= 0 and radius.max() <= 1.0 + 1e-6   # radius runs 0..1, noise is in the angle


def test_xor_classes_are_the_opposite_corners():
    data, labels = datasets.xor(num_points=200, noise=0.0, seed=1)
    assert set(map(tuple, numpy.abs(data).tolist())) == {(0.5, 0.5)}
    assert numpy.array_equal(labels == 1, data[:, 0] * data[:, 1] < 0)
    noisy, noisy_labels = datasets.xor(num_points=400, noise=0.1, seed=1)
    agree = ((noisy[:, 0] * noisy[:, 1] < 0) == (noisy_labels == 1)).mean()
    assert agree > 0.95


def test_circles_inner_disc_is_class_zero():
    data, labels = datasets.circles(num_points=400, noise=0.0, seed=1)
    radius = numpy.hypot(data[:, 0], data[:, 1])
    assert radius[labels == 0].max() <= 0.4 + 1e-6
    assert radius[labels == 1].min() >= 0.7 - 1e-6


def test_blobs_are_centred_on_a_circle():
    data, labels = datasets.blobs(num_points=900, noise=0.0, num_classes=3, seed=1)
    for k in range(3):
        centre = data[labels == k].mean(axis=0)
        angle = 2 * numpy.pi * k / 3
        numpy.testing.assert_allclose(centre, [0.6 * numpy.cos(angle), 0.6 * numpy.sin(angle)], atol=0.05)


def test_digits_are_8x8_images_in_unit_range():
    images, labels = datasets.digits()
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() >= 0 and images.max() <= 1 and images.max() > 0.9
    assert sorted(numpy.unique(labels).tolist()) == list(range(10))
    few, few_labels = datasets.digits(num_points=50)
    assert few.shape == (50, 1, 8, 8) and numpy.array_equal(few, images[:50])


def test_split_is_seeded_disjoint_and_sized():
    data = numpy.arange(100, dtype=numpy.float32)[:, None]
    labels = numpy.arange(100, dtype=numpy.float32)
    (train_x, train_y), (test_x, test_y) = datasets.split(data, labels, 0.2, seed=5)
    assert len(test_y) == 20 and len(train_y) == 80
    assert set(train_y.tolist()).isdisjoint(test_y.tolist())
    assert sorted(train_y.tolist() + test_y.tolist()) == list(range(100))
    assert numpy.array_equal(train_x[:, 0], train_y)         # rows stay aligned with labels
    again = datasets.split(data, labels, 0.2, seed=5)
    assert numpy.array_equal(again[1][1], test_y)
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.split(data, labels, 1.0, seed=5)


def test_unknown_dataset_and_bad_arguments():
    with pytest.raises(KeyError, match="available: spiral, xor, circles, blobs, digits"):
        datasets.load("moons")
    with pytest.raises(ValueError, match="num_points"):
        datasets.load("spiral", num_points=-1)


def test_builtin_data_layer_reports_an_unknown_dataset():
    with pytest.raises(engine.DataError, match="layer 'd'.*unknown built-in dataset 'moons'"):
        engine.Net('layer { name: "d" type: "BuiltinData" top: "data" top: "label" '
                   'builtin_data_param { dataset: "moons" } }')


def test_builtin_digits_flatten_into_an_inner_product():
    net = engine.Net('layer { name: "d" type: "BuiltinData" top: "data" top: "label" '
                     'builtin_data_param { dataset: "digits" batch_size: 16 num_classes: 10 } }\n'
                     'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                     'inner_product_param { num_output: 10 } }')
    net.forward()
    assert net.blobs["data"].shape == (16, 1, 8, 8)
    assert net.layers[1].K == 64 and net.blobs["ip"].shape == (16, 10)
