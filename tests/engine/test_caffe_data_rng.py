"""The data layers' random draws as Caffe's: glibc rand() and libstdc++'s random_shuffle
(HDF5Data), boost::uniform_int and caffe::shuffle (ImageData), the DataTransformer's
Rand(n) per image; each against plain loops written here, independent of engine.caffe_rng."""
from __future__ import annotations

import json

import h5py
import numpy
import pytest
from google.protobuf import text_format

import engine
from engine import rng
from engine.caffe_rng import (
    CaffeStream,
    GlibcRand,
    boost_uniform_int,
    caffe_shuffle,
    libstdcxx_random_shuffle,
)
from engine.errors import DataError
from engine.proto import caffe_pb2
from engine.transformer import DataTransformer

from .helpers import mt19937_outputs


# -- the tests' own references --------------------------------------------------------------
def plain_glibc_outputs(seed: int, count: int) -> list[int]:
    """glibc rand() after srand(seed), written as the r[] sequence: r[0] = seed, r[i] =
    16807 r[i-1] mod (2^31 - 1) by glibc's signed Schrage steps for i < 31, r[i] = r[i-31]
    for i = 31..33, then r[i] = r[i-31] + r[i-3] mod 2^32; output k is r[344 + k] >> 1."""
    seed = seed % 2**32 or 1
    r = [seed]
    word = seed - 2**32 if seed >= 2**31 else seed  # an int32_t in glibc
    for _ in range(1, 31):
        hi = int(word / 127773)  # C division: towards zero
        lo = word - hi * 127773
        word = 16807 * lo - 2836 * hi
        if word < 0:
            word += 2147483647
        r.append(word % 2**32)
    for i in range(31, 34):
        r.append(r[i - 31])
    for i in range(34, 344 + count):
        r.append((r[i - 31] + r[i - 3]) % 2**32)
    return [value >> 1 for value in r[344:344 + count]]


def plain_random_shuffle(items: list, outputs) -> None:
    """libstdc++'s std::random_shuffle(first, last): j = rand() % (i + 1) for i = 1 .. n-1."""
    for i in range(1, len(items)):
        j = next(outputs) % (i + 1)
        items[i], items[j] = items[j], items[i]


def plain_uniform_int(raws, low: int, high: int) -> int:
    """boost::uniform_int(low, high) on a 32-bit engine: bucket = 2^32 // (span + 1), redrawn
    while raw // bucket is past the span; one value takes no draw."""
    span = high - low
    if span == 0:  # boost returns the one value without drawing
        return low
    bucket = 2**32 // (span + 1)
    while True:
        pick = next(raws) // bucket
        if pick <= span:
            return low + pick


def plain_caffe_shuffle(items: list, raws) -> None:
    """caffe::shuffle: for i = n-1 down to 1, swap items i and uniform_int(0, i)."""
    for i in range(len(items) - 1, 0, -1):
        j = plain_uniform_int(raws, 0, i)
        items[i], items[j] = items[j], items[i]


# -- glibc rand() -------------------------------------------------------------------------
def test_glibc_rand_from_seed_1_gives_glibcs_first_outputs():
    glibc = GlibcRand()
    assert [glibc.rand() for _ in range(5)] == [1804289383, 846930886, 1681692777, 1714636915, 1957747793]


@pytest.mark.parametrize("seed", [1, 0, 12345, 2**31 + 77, 2**32 - 1])
def test_glibc_rand_is_the_r_sequence(seed):
    glibc = GlibcRand(seed)
    assert [glibc.rand() for _ in range(1000)] == plain_glibc_outputs(seed, 1000)


def test_glibc_state_round_trips_through_json_and_a_bad_one_is_refused():
    glibc = GlibcRand()
    for _ in range(45):
        glibc.rand()
    saved = json.loads(json.dumps(glibc.state()))
    ahead = [glibc.rand() for _ in range(100)]
    glibc.set_state(saved)
    assert [glibc.rand() for _ in range(100)] == ahead == plain_glibc_outputs(1, 145)[45:]
    for broken in ({"table": saved["table"][:30], "front": 0}, {"table": saved["table"], "front": 31},
                   {"table": saved["table"]}, dict(saved, extra=1)):
        with pytest.raises(ValueError, match="glibc"):
            glibc.set_state(broken)


@pytest.mark.parametrize("length", [0, 1, 2, 17, 100])
def test_libstdcxx_random_shuffle_is_the_plain_loop(length):
    glibc = GlibcRand()
    outputs = iter(plain_glibc_outputs(1, 1000))
    mine, theirs = list(range(length)), list(range(length))
    for _ in range(3):  # reshuffling the shuffled list, as HDF5Data does each epoch
        libstdcxx_random_shuffle(mine, glibc)
        plain_random_shuffle(theirs, outputs)
        assert mine == theirs
    assert glibc.rand() == next(outputs)  # n - 1 draws a shuffle, none for 0 or 1 item


# -- boost::uniform_int and caffe::shuffle ----------------------------------------------------
@pytest.mark.parametrize("low,high,raws", [
    (0, 2, [0xFFFFFFFF, 0xFFFFFFFE, 7]),             # 3 values: the top raw is past the last bucket
    (0, 1, [0xFFFFFFFF, 0]),                         # 2 values divide 2^32: nothing rejected
    (0, 2**31 - 1, [0xFFFFFFFF, 3]),                 # boost's ++bucket_size branch (bucket 2)
    (-5, 7, [0xFFFFFFFF, 0xFFFFFFF0, 123456789]),    # 13 values, signed bounds
    (0, 3_000_000_000, [3_500_000_000, 4_000_000_000, 2_999_999_999]),  # rejection about 30%
    (4, 4, []),                                      # one value: no draw
])
def test_boost_uniform_int_is_the_bucket_formula(low, high, raws):
    mine, theirs = iter(raws), iter(raws)
    assert boost_uniform_int(mine.__next__, low, high) == plain_uniform_int(theirs, low, high)
    assert list(mine) == list(theirs)  # as many draws taken


def test_stream_uniform_int_follows_the_raw_outputs():
    stream = CaffeStream(42)
    raws = iter(mt19937_outputs(42, 400))
    for high in [1, 2, 5, 99, 2**20 + 3, 3_000_000_000, 4_000_000_000] * 10:
        assert stream.uniform_int(0, high) == plain_uniform_int(raws, 0, high)
    assert stream.rand() == next(raws)


@pytest.mark.parametrize("length", [0, 1, 2, 9, 50])
def test_caffe_shuffle_is_the_plain_loop(length):
    stream = CaffeStream(5)
    raws = iter(mt19937_outputs(5, 200))
    mine, theirs = list(range(length)), list(range(length))
    for _ in range(2):
        caffe_shuffle(mine, stream)
        plain_caffe_shuffle(theirs, raws)
        assert mine == theirs
    assert stream.rand() == next(raws)


def test_caffe_shuffle_redraws_a_rejected_pick_in_a_long_list():
    """300000 items: picks near 2^32 / (i + 1) buckets get rejected now and then (7 times
    for this seed); the block-wise shuffle must redraw each for the same i."""
    length, seed = 300_000, 3
    raws = CaffeStream(seed).raws(length + 100).tolist()
    counted = iter(raws)
    theirs = list(range(length))
    plain_caffe_shuffle(theirs, counted)
    used = length + 100 - len(list(counted))
    assert used > length - 1  # the reference did meet rejections
    mine = list(range(length))
    stream = CaffeStream(seed)
    caffe_shuffle(mine, stream)
    assert mine == theirs
    assert stream.rand() == raws[used]


# -- the DataTransformer's Rand(n) ---------------------------------------------------------
def transformer(phase, **fields) -> DataTransformer:
    param = caffe_pb2.TransformationParameter(**fields)
    return DataTransformer(param, phase, "layer 'test'")


@pytest.mark.parametrize("fields,phase,per_image", [
    ({"mirror": True}, engine.TRAIN, "m"),
    ({"crop_size": 3}, engine.TRAIN, "hw"),
    ({"crop_size": 3, "mirror": True}, engine.TRAIN, "mhw"),
    ({"crop_size": 3, "mirror": True}, engine.TEST, "m"),  # TEST: centred crop, only the mirror drawn
])
def test_transformer_draws_per_image_in_caffes_order(fields, phase, per_image):
    height, width, count = 7, 6, 5
    rng.set_seed(31)
    made = transformer(phase, **fields)
    seed = mt19937_outputs(31, 1)[0]  # InitRand: one caffe_rng_rand()
    raws = iter(mt19937_outputs(seed, 2 * count * len(per_image)))
    for _ in range(2):  # two batches: the second goes on where the first ended
        flips, rows, cols = made.draws(count, height, width)
        for k in range(count):
            expected = {"m": 0, "h": (height - 3) // 2, "w": (width - 3) // 2}
            for what in per_image:
                raw = next(raws)
                expected[what] = raw % 2 if what == "m" else raw % ((height if what == "h" else width) - 3 + 1)
            if "crop_size" not in fields:
                expected["h"] = expected["w"] = 0
            assert (bool(flips[k]), int(rows[k]), int(cols[k])) == \
                (bool(expected["m"]), expected["h"], expected["w"]), f"image {k}"


def test_transformer_output_is_the_drawn_crop_and_flip():
    rng.set_seed(8)
    made = transformer(engine.TRAIN, crop_size=2, mirror=True, scale=0.5)
    raws = mt19937_outputs(mt19937_outputs(8, 1)[0], 9)
    batch = numpy.arange(3 * 2 * 4 * 5, dtype=numpy.uint8).reshape(3, 2, 4, 5)
    out = made.transform(batch)
    for k in range(3):
        flip, h, w = raws[3 * k] % 2, raws[3 * k + 1] % 3, raws[3 * k + 2] % 4
        piece = batch[k, :, h:h + 2, w:w + 2].astype(numpy.float32) * numpy.float32(0.5)
        numpy.testing.assert_array_equal(out[k], piece[:, :, ::-1] if flip else piece)


def test_transformer_random_state_round_trips_and_an_old_numpy_state_is_ignored():
    rng.set_seed(3)
    made = transformer(engine.TRAIN, crop_size=2, mirror=True)
    made.draws(4, 5, 5)
    saved = json.loads(json.dumps(made.random_state()))
    ahead = made.draws(6, 5, 5)
    made.set_random_state(saved)
    for mine, theirs in zip(made.draws(6, 5, 5), ahead):
        numpy.testing.assert_array_equal(mine, theirs)
    made.set_random_state(saved)
    old_format = dict(numpy.random.default_rng(1).bit_generator.state)
    made.set_random_state(old_format)  # saved before the draws were Caffe's: left where it is
    for mine, theirs in zip(made.draws(6, 5, 5), ahead):
        numpy.testing.assert_array_equal(mine, theirs)
    with pytest.raises(DataError, match="layer 'test'.*corrupt"):
        made.set_random_state({"key": [0] * 624, "pos": 0})


# -- ImageData: caffe::shuffle on prefetch_rng_ ---------------------------------------------
def test_image_data_shuffles_the_list_as_caffe(tmp_path):
    from PIL import Image

    lines = []
    for i in range(7):
        Image.fromarray(numpy.full((2, 2), i, numpy.uint8), "L").save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png {i}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    rng.set_seed(2024)
    net = engine.Net(f"""
    layer {{ name: "img" type: "ImageData" top: "data" top: "label"
      image_data_param {{ source: "{tmp_path / 'list.txt'}" root_folder: "{tmp_path}/" batch_size: 5
                          is_color: false shuffle: true }} }}""", engine.TRAIN)
    labels = []
    for _ in range(6):
        net.forward()
        labels.extend(int(v) for v in engine.backend.to_numpy(net.blobs["label"].data))
    prefetch_seed = mt19937_outputs(2024, 1)[0]  # no transformer draw: the shuffle's seed comes first
    raws = iter(mt19937_outputs(prefetch_seed, 200))
    order, expected = list(range(7)), []
    plain_caffe_shuffle(order, raws)
    while len(expected) < len(labels):
        expected.extend(order)
        plain_caffe_shuffle(order, raws)  # ShuffleImages again when the list wraps
    assert labels == expected[:len(labels)]


# -- HDF5Data: std::random_shuffle on glibc rand() ------------------------------------------
def write_h5_files(folder, row_counts) -> str:
    """File f, row r holds the value 100 f + r (data and label)."""
    paths = []
    for f, rows in enumerate(row_counts):
        values = (100 * f + numpy.arange(rows)).astype(numpy.float32)
        path = folder / f"part_{f}.h5"
        with h5py.File(path, "w") as handle:
            handle["data"] = values.reshape(rows, 1)
            handle["label"] = values
        paths.append(str(path))
    (folder / "list.txt").write_text("\n".join(paths) + "\n")
    return str(folder / "list.txt")


def caffe_hdf5_rows(row_counts, count: int, shuffle: bool = True) -> list[int]:
    """Caffe 1.0's HDF5DataLayer LayerSetUp, then Forward_cpu row by row (copy, Next())."""
    outputs = iter(plain_glibc_outputs(1, 100_000))

    def random_shuffle(items):
        if shuffle:
            plain_random_shuffle(items, outputs)

    file_permutation = list(range(len(row_counts)))
    random_shuffle(file_permutation)
    current_file = 0
    data_permutation = list(range(row_counts[file_permutation[0]]))
    random_shuffle(data_permutation)  # LoadHDF5FileData
    current_row, rows = 0, []
    for _ in range(count):
        rows.append(100 * file_permutation[current_file] + data_permutation[current_row])
        current_row += 1  # Next()
        if current_row == len(data_permutation):
            if len(row_counts) > 1:
                current_file += 1
                if current_file == len(row_counts):
                    current_file = 0
                    random_shuffle(file_permutation)
                data_permutation = list(range(row_counts[file_permutation[current_file]]))
                random_shuffle(data_permutation)  # LoadHDF5FileData
            current_row = 0
            random_shuffle(data_permutation)
    return rows


def hdf5_net_text(source: str, batch: int) -> str:
    return f"""
    name: "h5"
    layer {{ name: "data" type: "HDF5Data" top: "data" top: "label"
            hdf5_data_param {{ source: "{source}" batch_size: {batch} shuffle: true }} }}"""


@pytest.mark.parametrize("row_counts", [[4], [3, 5, 2]])
def test_hdf5_shuffle_over_epochs_is_caffes(tmp_path, row_counts):
    source = write_h5_files(tmp_path, row_counts)
    rng.reset_c_rand()
    net = engine.Net(hdf5_net_text(source, 3), engine.TRAIN)
    got = []
    for _ in range(4 * sum(row_counts) // 3 + 1):  # four epochs and a bit
        net.forward()
        got.extend(int(v) for v in engine.backend.to_numpy(net.blobs["label"].data))
    assert got == caffe_hdf5_rows(row_counts, len(got))
    assert got != caffe_hdf5_rows(row_counts, len(got), shuffle=False)


def solver_param(tmp_path, source: str) -> caffe_pb2.SolverParameter:
    param = caffe_pb2.SolverParameter(base_lr=1e-6, lr_policy="fixed", random_seed=7, max_iter=100,
                                      snapshot_prefix=str(tmp_path / "snaps" / "run"),
                                      snapshot_format=caffe_pb2.SolverParameter.HDF5)
    text_format.Parse(hdf5_net_text(source, 4) + """
    layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
            inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "label" top: "loss" }""", param.net_param)
    return param


def stepped_rows(solver, steps: int) -> list[list[int]]:
    rows = []
    for _ in range(steps):
        solver.step(1)
        rows.append([int(v) for v in engine.backend.to_numpy(solver.net.blobs["label"].data)])
    return rows


def test_each_solver_starts_glibc_rand_afresh_and_snapshots_carry_it(tmp_path):
    source = write_h5_files(tmp_path, [3, 5, 2])
    param = solver_param(tmp_path, source)
    straight = stepped_rows(engine.get_solver(param), 9)
    rng.c_rand().rand()  # whatever happened in this process before, a new Solver starts at seed 1
    assert stepped_rows(engine.get_solver(param), 9) == straight
    assert sum(straight, []) == caffe_hdf5_rows([3, 5, 2], 36)

    first = engine.get_solver(param)
    stepped_rows(first, 4)  # 16 rows: in the second epoch of 10
    _, state = first.snapshot()
    resumed = engine.get_solver(param)
    resumed.restore(state)
    assert stepped_rows(resumed, 5) == straight[4:]  # the epoch ends inside: a reshuffle from rand()

    with h5py.File(state, "a") as handle:  # the control: without glibc's position saved
        group = handle["backprop_studio"]
        saved = json.loads(group.attrs["rng_state"])
        del saved[rng.GLIBC_STATE_KEY]
        group.attrs["rng_state"] = json.dumps(saved)
    without = engine.get_solver(param)
    without.restore(state)
    assert stepped_rows(without, 5) != straight[4:]
