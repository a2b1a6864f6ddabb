"""HDF5Data: Caffe's row order, wrap-around across files, shuffling, positions, errors."""
from __future__ import annotations

import numpy
import pytest

import engine
from engine import rng
from engine.errors import DataError
from engine.tools import to_hdf5, write_source_list


def write_files(folder, row_counts, feature_shape=(3,), first_value=0):
    """One .h5 per row count; row r of the whole sequence holds value first_value + r."""
    paths, start = [], first_value
    for k, rows in enumerate(row_counts):
        values = numpy.arange(start, start + rows, dtype=numpy.float32)
        data = numpy.broadcast_to(values.reshape((rows,) + (1,) * len(feature_shape)),
                                  (rows,) + tuple(feature_shape)).copy()
        sub = folder / "parts"
        sub.mkdir(exist_ok=True)
        paths.append(to_hdf5(data, values * 10, sub / f"part_{k}.h5"))
        start += rows
    return write_source_list(paths, folder / "list.txt")


def data_net(source, batch, shuffle=False, phase=engine.TRAIN):
    text = f"""
    name: "h5"
    layer {{ name: "data" type: "HDF5Data" top: "data" top: "label"
            hdf5_data_param {{ source: "{source}" batch_size: {batch} shuffle: {str(shuffle).lower()} }} }}
    """
    return engine.Net(text, phase)


def batches(net, count):
    out = []
    for _ in range(count):
        net.forward()
        out.append((net.blobs["data"].data.copy(), net.blobs["label"].data.copy()))
    return out


def test_rows_in_order_with_wrap_around_across_files(tmp_path):
    source = write_files(tmp_path, [5, 3])
    net = data_net(source, batch=4)
    assert net.blobs["data"].shape == (4, 3)
    assert net.blobs["label"].shape == (4,)
    seen = batches(net, 5)
    expected_rows = [r % 8 for r in range(20)]  # files 0 then 1, then back to file 0
    got_rows = numpy.concatenate([data[:, 0] for data, _ in seen])
    numpy.testing.assert_array_equal(got_rows, expected_rows)
    got_labels = numpy.concatenate([label for _, label in seen])
    numpy.testing.assert_array_equal(got_labels, numpy.array(expected_rows) * 10.0)
    # every feature of a row is that row's value
    for data, _ in seen:
        assert (data == data[:, :1]).all()


def test_single_file_wraps_without_reloading_and_4d_rows(tmp_path):
    source = write_files(tmp_path, [3], feature_shape=(1, 2, 2))
    net = data_net(source, batch=2)
    assert net.blobs["data"].shape == (2, 1, 2, 2)
    got = numpy.concatenate([d[:, 0, 0, 0] for d, _ in batches(net, 4)])
    numpy.testing.assert_array_equal(got, [0, 1, 2, 0, 1, 2, 0, 1])


def test_relative_names_in_the_list_resolve_against_its_folder(tmp_path, monkeypatch):
    source = write_files(tmp_path, [4])
    monkeypatch.chdir(tmp_path / "parts")  # a working directory where 'parts/...' does not exist
    net = data_net(source, batch=4)
    net.forward()
    numpy.testing.assert_array_equal(net.blobs["data"].data[:, 0], [0, 1, 2, 3])


def test_shuffle_is_a_glibc_rand_permutation_per_epoch(tmp_path):
    """Caffe shuffles with std::random_shuffle on glibc rand(), which it never seeds: the
    order follows the process's rand() (reset as a Solver is built), not random_seed."""
    source = write_files(tmp_path, [6, 4])

    def epoch_rows(seed, reset=True):
        rng.set_seed(seed)
        if reset:
            rng.reset_c_rand()
        net = data_net(source, batch=5, shuffle=True)
        return numpy.concatenate([d[:, 0] for d, _ in batches(net, 6)])  # three epochs of 10 rows

    first, again, other_seed = epoch_rows(7), epoch_rows(7), epoch_rows(8)
    numpy.testing.assert_array_equal(first, again)
    numpy.testing.assert_array_equal(first, other_seed)
    assert not numpy.array_equal(first, epoch_rows(7, reset=False))  # rand() went on from where it was
    for epoch in range(3):
        rows = first[epoch * 10:(epoch + 1) * 10]
        assert sorted(rows) == list(range(10))
        # a file is read whole before the next: rows of one file stay together
        files = [0 if r < 6 else 1 for r in rows]
        assert files == sorted(files) or files == sorted(files, reverse=True)
    assert not numpy.array_equal(first[:10], numpy.arange(10))


@pytest.mark.parametrize("shuffle", [False, True])
def test_saved_position_continues_exactly(tmp_path, shuffle):
    source = write_files(tmp_path, [5, 3])
    rng.set_seed(3)
    net = data_net(source, batch=3, shuffle=shuffle)
    batches(net, 3)  # 9 rows: into the second epoch
    state = net.layers[0].state()
    rng_state = rng.get_state()
    expected = batches(net, 4)

    rng.set_seed(99)
    fresh = data_net(source, batch=3, shuffle=shuffle)
    fresh.layers[0].set_state(state)
    rng.set_state(rng_state)
    for (want, _), (got, _) in zip(expected, batches(fresh, 4)):
        numpy.testing.assert_array_equal(got, want)


def test_saved_position_for_other_data_is_refused(tmp_path):
    source = write_files(tmp_path, [5, 3])
    net = data_net(source, batch=2)
    state = net.layers[0].state()
    state["row_order"] = numpy.arange(7)
    with pytest.raises(DataError, match="row"):
        net.layers[0].set_state(state)
    state = net.layers[0].state()
    state["file_order"] = numpy.arange(3)
    with pytest.raises(DataError, match="3 file"):
        net.layers[0].set_state(state)


def test_missing_dataset_names_file_and_dataset(tmp_path):
    path = to_hdf5(numpy.zeros((2, 3)), numpy.zeros(2), tmp_path / "a.h5", label_name="target")
    source = write_source_list([path], tmp_path / "list.txt")
    with pytest.raises(DataError, match=r"a\.h5.*no dataset 'label'.*target"):
        data_net(source, batch=1)


def test_corrupt_and_missing_files_are_data_errors(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DataError, match="bad.h5"):
        data_net(write_source_list([bad], tmp_path / "bad.txt"), batch=1)
    with pytest.raises(DataError, match="gone.h5"):
        data_net(write_source_list([tmp_path / "gone.h5"], tmp_path / "gone.txt"), batch=1)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DataError, match="names no .h5 files"):
        data_net(tmp_path / "empty.txt", batch=1)
    with pytest.raises(DataError, match="nolist.txt"):
        data_net(tmp_path / "nolist.txt", batch=1)


def test_truncated_file_is_a_data_error(tmp_path):
    path = to_hdf5(numpy.ones((50, 20)), numpy.zeros(50), tmp_path / "full.h5")
    raw = open(path, "rb").read()
    (tmp_path / "cut.h5").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataError, match="cut.h5"):
        data_net(write_source_list([tmp_path / "cut.h5"], tmp_path / "cut.txt"), batch=1)


def test_files_disagreeing_on_row_shape_are_refused(tmp_path):
    a = to_hdf5(numpy.zeros((2, 3)), numpy.zeros(2), tmp_path / "a.h5")
    b = to_hdf5(numpy.zeros((2, 4)), numpy.zeros(2), tmp_path / "b.h5")
    net = data_net(write_source_list([a, b], tmp_path / "list.txt"), batch=2)
    with pytest.raises(DataError, match=r"rows of shape \(4,\) in '.*b\.h5' but \(3,\) in '.*a\.h5'"):
        net.forward()  # the batch ends file a; moving on to b finds the other shape


def test_to_hdf5_checks_its_inputs(tmp_path):
    with pytest.raises(DataError, match="3 rows of data but 2 labels"):
        to_hdf5(numpy.zeros((3, 2)), numpy.zeros(2), tmp_path / "x.h5")
    with pytest.raises(DataError, match="NaN"):
        to_hdf5(numpy.full((2, 2), numpy.nan), numpy.zeros(2), tmp_path / "x.h5")
    with pytest.raises(DataError, match="one per row"):
        to_hdf5(numpy.zeros((2, 2)), numpy.zeros((2, 3)), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_lenet_data_files_are_small_and_mnist_shaped(data_dir):
    import h5py
    folder = data_dir / "lenet"
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total < 1_000_000
    with h5py.File(folder / "train_0.h5", "r") as handle:
        assert handle["data"].shape == (256, 1, 28, 28)
        assert handle["label"].shape == (256,)
        data = handle["data"][()]
    assert 0.0 <= data.min() and data.max() <= 1.0
    assert (data[:, :, :2, :] == 0).all() and (data[:, :, :, -2:] == 0).all()  # the padding
