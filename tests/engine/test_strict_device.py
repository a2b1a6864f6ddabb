"""The strict device stand-in itself (engine/strict_device.py): what it refuses, what it
counts, that it computes numpy's numbers; and the one line saying which cupy extra fits
the driver (engine.backend, with made-up driver versions)."""
import copy
import pickle

import numpy
import pytest

import engine
from engine import backend, strict_device
from engine.strict_device import D2H, H2D, ImplicitTransferError, xp

HOST = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)


@pytest.fixture
def log():
    with strict_device.counting() as found:
        yield found


def device(array=HOST):
    return xp.asarray(array)


# -- refused: where cupy raises or copies silently ------------------------------
@pytest.mark.parametrize("crossing", [
    lambda d: numpy.asarray(d),
    lambda d: numpy.array(d),
    lambda d: float(d.sum()),
    lambda d: int(d[0, 0]),
    lambda d: complex(d[0, 0]),
    lambda d: bool(d[0, 0]),
    lambda d: d.sum() and 1,
    lambda d: range(d[0, 1].astype(numpy.int64)),
    lambda d: [1, 2][d[0, 1].astype(numpy.int64)],
    lambda d: 1.0 in d,
    lambda d: d.tolist(),
    lambda d: d.tobytes(),
    lambda d: f"{d.sum():.3f}",
    lambda d: pickle.dumps(d),
    lambda d: d + HOST,
    lambda d: HOST + d,
    lambda d: d * numpy.float32(2) + numpy.ones(3, numpy.float32),
    lambda d: d + numpy.asarray(1.0, numpy.float32),  # a 0-d host array is an array, not a scalar
    lambda d: numpy.add(d, HOST),
    lambda d: numpy.multiply(d, 2, out=numpy.empty((2, 3), numpy.float32)),
    lambda d: xp.add(HOST, HOST),
    lambda d: xp.matmul(d, HOST.T),
    lambda d: xp.copyto(d, HOST),
    lambda d: numpy.concatenate([d, HOST]),
    lambda d: d.__setitem__(Ellipsis, HOST),
    lambda d: d.__setitem__(0, [1.0, 2.0, 3.0]),
    lambda d: d[numpy.array([0, 1])],
    lambda d: d[[0, 1]],
    lambda d: d[0].__setitem__(numpy.array([True, False, True]), 0.0),
    lambda d: HOST.__setitem__(Ellipsis, d),
    lambda d: HOST[d[0, 1].astype(numpy.int64)],
])
def test_implicit_crossings_are_refused(crossing, log):
    d = device()
    log.clear()
    with pytest.raises(ImplicitTransferError) as info:
        crossing(d)
    assert isinstance(info.value, TypeError)  # cupy's refusals are TypeErrors too
    assert "strict device" in str(info.value)
    assert log.transfers == []


# -- allowed: device work, scalars as kernel arguments --------------------------
def test_device_arithmetic_equals_numpy_bit_for_bit(log):
    d = device()
    log.clear()
    result = xp.exp(d * numpy.float32(0.5) - 1.0) @ d.T + xp.maximum(d, 2).sum(axis=1)
    expected = numpy.exp(HOST * numpy.float32(0.5) - 1.0) @ HOST.T + numpy.maximum(HOST, 2).sum(axis=1)
    assert type(result) is strict_device.ndarray and result.dtype == expected.dtype
    numpy.testing.assert_array_equal(result.get(), expected)
    assert [t.what for t in log.transfers] == ["get"]


def test_reductions_and_scalar_indexing_stay_on_the_device():
    d = device()
    total, element = d.sum(), d[1, 2]
    assert type(total) is strict_device.ndarray and total.shape == ()
    assert type(element) is strict_device.ndarray and element.shape == ()
    element[...] = 42.0  # a view, as in cupy
    assert d[1, 2].item() == 42.0
    assert type(numpy.sum(d)) is strict_device.ndarray  # numpy functions dispatch to the device
    assert type(xp.isfinite(d).all()) is strict_device.ndarray


def test_in_place_and_out_keep_the_array():
    d, other = device(), device()
    alias = d
    d += other
    assert d is alias
    out = xp.empty((2, 3), numpy.float32)
    assert xp.multiply(d, other, out=out) is out
    assert d.sum(axis=0, out=xp.empty(3, numpy.float32)) is not None
    numpy.testing.assert_array_equal(out.get(), 2 * HOST * HOST)


def test_device_index_arrays_work():
    d = device()
    index = xp.asarray(numpy.array([1, 0]))
    numpy.testing.assert_array_equal(d[index].get(), HOST[[1, 0]])
    d[d > 2] = 0.0
    assert d.max().item() == 2.0


def test_copies_stay_on_the_device(log):
    d = device()
    log.clear()
    for twin in (d.copy(), copy.copy(d), copy.deepcopy(d), xp.array(d), xp.asarray(d)):
        assert type(twin) is strict_device.ndarray
    assert xp.asarray(d) is d
    assert log.transfers == []


# -- counted: explicit transfers ------------------------------------------------
def test_explicit_transfers_are_counted_with_their_bytes(log):
    d = xp.asarray(HOST)
    host = d.get()
    xp.asnumpy(d)
    d.set(HOST * 2)
    value = d[0, 1].item()
    repr(d)
    assert type(host) is numpy.ndarray and value == 2.0
    assert [(t.direction, t.nbytes, t.what) for t in log.transfers] == [
        (H2D, 24, "asarray"), (D2H, 24, "get"), (D2H, 24, "get"), (H2D, 24, "set"), (D2H, 4, "item"),
        (D2H, 24, "repr")]
    assert (log.h2d, log.h2d_bytes, log.d2h, log.d2h_bytes) == (2, 48, 4, 76)
    assert all("test_strict_device.py:" in t.where for t in log.transfers)  # the line that asked


def test_installed_as_the_gpu_through_the_backend():
    assert backend.current_mode() == "cpu"
    with strict_device.installed() as log:
        assert backend.gpu_status() == (True, "the strict device stand-in (tests only)")
        blob = engine.Blob((2, 3), device="gpu")
        assert backend.get_array_module(blob.data) is xp and blob.xp is xp
        assert backend.device_of(blob.data) == "gpu"
        blob.data[...] = backend.to_device(HOST, "gpu")
        numpy.testing.assert_array_equal(backend.to_numpy(blob.data), HOST)
        engine.set_mode_gpu()
        assert engine.Net('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 } } }') \
            .blobs["x"].device == "gpu"
        assert (log.h2d, log.d2h) == (1, 1)
    assert backend.current_mode() == "cpu"  # the mode is put back
    assert backend.get_array_module(numpy.zeros(1)) is numpy
    if not backend.gpu_status()[0]:
        with pytest.raises(engine.DeviceError):
            engine.Blob((2,), device="gpu")


# -- which cupy extra fits the driver -------------------------------------------
CUDA12, CUDA13 = [("cupy-cuda12x", 12)], [("cupy-cuda13x", 13)]


@pytest.mark.parametrize("driver, wheels, expected", [
    (12040, CUDA12, None),
    (13000, CUDA12, None),                        # newer drivers run older CUDA builds
    (13010, CUDA13, None),
    (12040, [], "pip install -e '.[gpu12]'"),
    (12090, [], "CUDA 12.9"),
    (13000, [], "pip install -e '.[gpu13]'"),
    (14020, [], "pip install -e '.[gpu13]'"),     # the newest extra there is
    (12040, CUDA13, "pip uninstall -y cupy-cuda13x && pip install -e '.[gpu12]'"),
    (13000, CUDA12 + CUDA13, "several cupy packages"),
    (11080, [], "CUDA 11.8"),
    (11080, CUDA12, "update the driver"),
    (None, [], "no NVIDIA driver"),
])
def test_install_hint_names_the_extra_that_fits(driver, wheels, expected):
    hint = backend.cupy_install_hint(driver, wheels)
    if expected is None:
        assert hint is None
    else:
        assert expected in hint and "\n" not in hint


def test_driver_version_from_nvidia_smi_text():
    header = "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |"
    assert backend.parse_nvidia_smi(header) == 12040
    assert backend.parse_nvidia_smi("CUDA Version: 13.0") == 13000
    assert backend.parse_nvidia_smi("NVIDIA-SMI has failed") is None


def test_gpu_status_is_one_line_naming_an_extra_or_a_working_gpu():
    ok, why = backend.gpu_status()
    assert "\n" not in why
    if not ok:
        assert "gpu12" in why or "gpu13" in why or "driver" in why
