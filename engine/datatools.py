"""Caffe's data files: ``Datum`` records in LMDB / LevelDB databases, images
decoded as OpenCV decodes them, and Caffe's tools ``convert_imageset`` and
``compute_image_mean`` (``python -m engine convert_imageset`` / ``compute_image_mean``).

Images
    Pixels are handed around as OpenCV holds them: ``H x W x C`` uint8 with the
    colour channels in **BGR** order (BGRA with alpha), which is also the order
    Caffe stores in a raw ``Datum`` (``C x H x W``, channel 0 = blue). Decoding
    uses Pillow; the modes follow OpenCV's ``imdecode`` flags: ``"native"``
    (IMREAD_UNCHANGED: grey stays 1 channel, colour 3, alpha 4), ``"color"``
    (IMREAD_COLOR: always 3) and ``"gray"`` (IMREAD_GRAYSCALE: always 1).
    Known differences from OpenCV: colour-to-grey uses libpng's integer
    weights for PNG, libjpeg's own grey decoding for JPEG and OpenCV's
    ``cvtColor`` weights otherwise (the same formulas; an exotic decoder path
    may differ by one level); resizing uses Pillow's bilinear filter, which
    averages over the whole footprint when shrinking, where OpenCV's
    ``cv::resize`` (INTER_LINEAR) samples only the 2 x 2 nearest pixels: resized
    images are close to, not bit-identical with, Caffe's.

Databases
    Read-only and without locking (LMDB ``lock=False``); one handle per
    database and process. Records are read in key order. Written databases
    appear atomically: they are built in a temporary folder beside the target,
    then renamed.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy

from .errors import DataError
from .proto import caffe_pb2

LMDB, LEVELDB = "lmdb", "leveldb"
_COMMIT_EVERY = 1000


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------
def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - a declared dependency
        raise DataError("reading images needs Pillow (pip install Pillow)") from None
    return Image


def _rgb_to_gray(rgb: numpy.ndarray, image_format: str | None) -> numpy.ndarray:
    """Grey levels of an H x W x 3 RGB uint8 image as OpenCV's decoders make them."""
    r, g, b = (rgb[..., k].astype(numpy.uint32) for k in range(3))
    if image_format == "PNG":  # libpng's png_do_rgb_to_gray (0.299, 0.587 in 15-bit fixed point, truncated)
        gray = (9797 * r + 19234 * g + 3737 * b) >> 15
        gray = numpy.where((r == g) & (r == b), r, gray)
    else:  # cv::cvtColor(BGR2GRAY): 14-bit fixed point, rounded
        gray = (4899 * r + 9617 * g + 1868 * b + 8192) >> 14
    return gray.astype(numpy.uint8)


def _as_8bit(image, where: str):
    """Pillow image in an 8-bit mode; 16-bit greys are scaled down as OpenCV does without ANYDEPTH."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        levels = numpy.asarray(image).astype(numpy.int64)
        if image.mode == "I" and levels.max(initial=0) <= 255:
            return _pil().fromarray(levels.astype(numpy.uint8), "L")
        return _pil().fromarray((levels >> 8).clip(0, 255).astype(numpy.uint8), "L")
    if image.mode == "F":
        raise DataError(f"{where}: floating-point images are not supported (Caffe reads 8-bit images)")
    return image


def pil_to_opencv(image, mode: str, where: str) -> numpy.ndarray:
    """H x W x C uint8 in OpenCV's channel order for a Pillow image (see the module doc)."""
    if mode == "native" and image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise DataError(f"{where}: {image.mode} images (16-bit or float) are not supported; Caffe's "
                        f"DataTransformer needs 8-bit pixels")
    fmt = image.format
    image = _as_8bit(image, where)
    if mode == "gray":
        if image.mode == "L":
            return numpy.asarray(image)[:, :, None]
        if image.mode in ("1", "LA"):
            return numpy.asarray(image.convert("L"))[:, :, None]
        return _rgb_to_gray(numpy.asarray(image.convert("RGB")), fmt)[:, :, None]
    if mode == "native":
        if image.mode in ("L", "1"):
            return numpy.asarray(image.convert("L"))[:, :, None]
        has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        if has_alpha:
            rgba = numpy.asarray(image.convert("RGBA"))
            return numpy.ascontiguousarray(rgba[:, :, [2, 1, 0, 3]])
    rgb = numpy.asarray(image.convert("RGB"))
    return numpy.ascontiguousarray(rgb[:, :, ::-1])


def decode_image(data: bytes, mode: str = "native", where: str = "image") -> numpy.ndarray:
    """Decode PNG/JPEG/... bytes (cv::imdecode): H x W x C uint8, BGR order."""
    Image = _pil()
    try:
        image = Image.open(io.BytesIO(data))
        if mode == "gray" and image.format == "JPEG":
            image.draft("L", image.size)  # libjpeg decodes straight to grey, as OpenCV asks it to
        image.load()
    except Exception as exc:  # Pillow raises many types for bad data
        raise DataError(f"{where}: cannot decode the image ({type(exc).__name__}: {exc})") from None
    return pil_to_opencv(image, mode, where)


def resize_image(image: numpy.ndarray, height: int, width: int) -> numpy.ndarray:
    """Bilinear resize of an H x W x C uint8 image (Pillow's filter; see the module doc)."""
    if image.shape[:2] == (height, width):
        return image
    Image = _pil()
    planes = [numpy.asarray(Image.fromarray(numpy.ascontiguousarray(image[:, :, c]), "L")
                            .resize((width, height), Image.Resampling.BILINEAR))
              for c in range(image.shape[2])]
    return numpy.stack(planes, axis=2)


def _read_image_file(path: str, height: int, width: int, is_color: bool,
                     where: str) -> tuple[bytes, numpy.ndarray, bool]:
    """(file bytes, decoded image, resized?): the image at ``path`` in colour (BGR) or
    grey, resized to ``height`` x ``width`` when both are > 0."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise DataError(f"{where}: could not open or find the file ({exc.strerror})") from None
    image = decode_image(data, "color" if is_color else "gray", where)
    resized = height > 0 and width > 0
    if resized:
        image = resize_image(image, height, width)
    return data, image, resized


def read_image(path: str, height: int = 0, width: int = 0, is_color: bool = True,
               where: str | None = None) -> numpy.ndarray:
    """Caffe's ReadImageToCVMat: the image at ``path`` in colour (BGR) or grey,
    resized to ``height`` x ``width`` when both are > 0."""
    return _read_image_file(path, height, width, is_color, where or f"image '{path}'")[1]


def encode_image(image: numpy.ndarray, encode_type: str) -> bytes:
    """cv::imencode: an H x W x C BGR uint8 image as PNG or JPEG bytes (JPEG quality 95, OpenCV's default)."""
    Image = _pil()
    kind = encode_type.lower().lstrip(".")
    channels = image.shape[2]
    if channels == 1:
        pil = Image.fromarray(numpy.ascontiguousarray(image[:, :, 0]), "L")
    elif channels == 3:
        pil = Image.fromarray(numpy.ascontiguousarray(image[:, :, ::-1]), "RGB")
    else:
        pil = Image.fromarray(numpy.ascontiguousarray(image[:, :, [2, 1, 0, 3]]), "RGBA")
    buffer = io.BytesIO()
    if kind == "png":
        pil.save(buffer, "PNG", compress_level=3)  # OpenCV's default PNG compression
    elif kind in ("jpg", "jpeg"):
        pil.save(buffer, "JPEG", quality=95)
    else:
        raise DataError(f"unknown encode type '{encode_type}' (use png or jpg)")
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# Datum
# ---------------------------------------------------------------------------
def parse_datum(value: bytes, where: str) -> caffe_pb2.Datum:
    """A Datum from a database value; DataError naming ``where`` when it is not one."""
    datum = caffe_pb2.Datum()
    try:
        datum.ParseFromString(value)
    except Exception:  # protobuf's DecodeError and friends
        raise DataError(f"{where} is not a Caffe Datum (it does not parse)") from None
    if not datum.encoded and (datum.channels <= 0 or datum.height <= 0 or datum.width <= 0):
        raise DataError(f"{where} is not a Caffe Datum with pixels (channels/height/width are "
                        f"{datum.channels}/{datum.height}/{datum.width})")
    return datum


def datum_pixels(datum: caffe_pb2.Datum, where: str, color: str = "native") -> numpy.ndarray:
    """A Datum's pixels as C x H x W: uint8 for ``data`` (raw or encoded), float32 for ``float_data``.

    ``color`` applies to encoded Datums only: "native" (DecodeDatumToCVMatNative),
    "color" or "gray" (DecodeDatumToCVMat with force_color / force_gray).
    """
    if datum.encoded:
        image = decode_image(datum.data, color, where)
        return numpy.ascontiguousarray(image.transpose(2, 0, 1))
    shape = (datum.channels, datum.height, datum.width)
    size = shape[0] * shape[1] * shape[2]
    if datum.data:
        if len(datum.data) != size:
            raise DataError(f"{where}: the Datum holds {len(datum.data)} bytes but channels x height x width "
                            f"= {shape[0]} x {shape[1]} x {shape[2]} = {size}")
        return numpy.frombuffer(datum.data, numpy.uint8).reshape(shape)
    if len(datum.float_data) != size:
        raise DataError(f"{where}: the Datum holds {len(datum.float_data)} float_data values but channels x "
                        f"height x width = {shape[0]} x {shape[1]} x {shape[2]} = {size}")
    return numpy.asarray(datum.float_data, dtype=numpy.float32).reshape(shape)


def array_to_datum(pixels: numpy.ndarray, label: int = 0) -> caffe_pb2.Datum:
    """A raw Datum from C x H x W values: bytes for uint8 arrays, float_data otherwise."""
    pixels = numpy.asarray(pixels)
    if pixels.ndim != 3:
        raise DataError(f"a Datum holds C x H x W values, got an array of shape {pixels.shape}")
    datum = caffe_pb2.Datum(channels=pixels.shape[0], height=pixels.shape[1], width=pixels.shape[2],
                            label=int(label))
    if pixels.dtype == numpy.uint8:
        datum.data = numpy.ascontiguousarray(pixels).tobytes()
    else:
        datum.float_data.extend(numpy.asarray(pixels, dtype=numpy.float32).reshape(-1).tolist())
    return datum


def image_to_datum(image: numpy.ndarray, label: int, encode_type: str | None = None) -> caffe_pb2.Datum:
    """Caffe's CVMatToDatum (raw C x H x W bytes) or, with ``encode_type``, an encoded Datum."""
    if encode_type:
        return caffe_pb2.Datum(data=encode_image(image, encode_type), label=int(label), encoded=True)
    return array_to_datum(numpy.ascontiguousarray(image.transpose(2, 0, 1)), label)


# ---------------------------------------------------------------------------
# reading databases
# ---------------------------------------------------------------------------
def backend_name(value) -> str:
    """'lmdb' or 'leveldb' from a DataParameter.DB value or a name."""
    if isinstance(value, str):
        name = value.lower()
        if name not in (LMDB, LEVELDB):
            raise DataError(f"unknown database backend '{value}' (use lmdb or leveldb)")
        return name
    return LMDB if value == caffe_pb2.DataParameter.LMDB else LEVELDB


def _looks_like(path: str) -> str | None:
    if os.path.isfile(os.path.join(path, "data.mdb")):
        return LMDB
    if os.path.isfile(os.path.join(path, "CURRENT")):
        return LEVELDB
    return None


_HANDLES: dict[tuple, Any] = {}


def _identity(path: str, backend: str) -> tuple:
    """Which database is at ``path`` now (one written anew under the same name is another folder)."""
    try:
        info = os.stat(path)
    except OSError:
        return (os.path.realpath(path), backend)
    return (os.path.realpath(path), backend, info.st_dev, info.st_ino)


def _open_handle(path: str, backend: str, where: str):
    key = _identity(path, backend)
    handle = _HANDLES.get(key)
    if handle is not None:
        return handle
    if not os.path.exists(path):
        raise DataError(f"{where}: the {backend.upper()} database does not exist (write one with "
                        f"'python -m engine convert_imageset' or engine.tools.to_lmdb)")
    found = _looks_like(path) if os.path.isdir(path) else None
    if found != backend:
        what = f"an {found.upper()} database" if found else "not a database folder"
        hint = (f" (set backend: {found.upper()} in data_param; Caffe's default is LEVELDB)" if found else "")
        raise DataError(f"{where}: the folder is {what}, expected {backend.upper()}{hint}")
    try:
        if backend == LMDB:
            import lmdb
            handle = lmdb.open(path, readonly=True, lock=False)
        else:
            import plyvel
            handle = plyvel.DB(path, create_if_missing=False)
    except Exception as exc:  # lmdb.Error / plyvel.Error
        raise DataError(f"{where}: cannot open the {backend.upper()} database: {exc}") from None
    _HANDLES[key] = handle
    return handle


class DatabaseReader:
    """Key-ordered, wrap-around access to the records of one LMDB or LevelDB database."""

    def __init__(self, path: str, backend: str, where: str):
        self.path, self.backend, self.where = path, backend_name(backend), where
        self.handle = _open_handle(path, self.backend, where)
        first = self._first_key()
        if first is None:
            raise DataError(f"{where}: the {self.backend.upper()} database is empty (no records)")
        self.first_key: bytes = first

    def _first_key(self) -> bytes | None:
        for key, _value in self._scan(None, 1):
            return key
        return None

    def _scan(self, start: bytes | None, limit: int) -> Iterator[tuple[bytes, bytes]]:
        """Up to ``limit`` records from ``start`` (inclusive) to the end, without wrapping."""
        if limit <= 0:
            return
        if self.backend == LMDB:
            with self.handle.begin(buffers=False) as txn:
                cursor = txn.cursor()
                found = cursor.set_range(start) if start is not None else cursor.first()
                taken = 0
                while found and taken < limit:
                    yield cursor.key(), cursor.value()
                    taken += 1
                    found = cursor.next()
        else:
            with contextlib.closing(self.handle.iterator(start=start)) as records:
                for taken, record in enumerate(records):
                    if taken >= limit:
                        break
                    yield record

    def read(self, start: bytes, count: int) -> tuple[list[tuple[bytes, bytes]], bytes, int]:
        """``count`` records from key ``start``, wrapping to the first key after the last
        (Caffe's cursor: Next, and SeekToFirst when it runs off the end).
        Returns (records, the key that follows, how many times it wrapped)."""
        records: list[tuple[bytes, bytes]] = []
        wraps = 0
        key = start
        while True:
            need = count - len(records)
            chunk = list(self._scan(key, need + 1))  # one more: the key that follows
            if not records and wraps == 0 and (not chunk or chunk[0][0] != start):
                raise DataError(f"{self.where}: the record with key {start!r} is not in '{self.path}' "
                                f"(the database changed since the position was saved)")
            if len(chunk) > need:
                records.extend(chunk[:need])
                return records, chunk[need][0], wraps
            records.extend(chunk)
            wraps += 1
            key = self.first_key
            if len(records) == count:
                return records, key, wraps

    def skip(self, start: bytes, count: int) -> tuple[bytes, int]:
        """The key ``count`` records after ``start`` (wrapping) and how many times it wrapped."""
        key, wraps = start, 0
        while count > 0:
            step = min(count, 4096)
            _records, key, wrapped = self.read(key, step)
            wraps += wrapped
            count -= step
        return key, wraps

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every record once, in key order."""
        key: bytes | None = None
        while True:
            chunk = list(self._scan(key, 1025))
            yield from chunk[:1024]
            if len(chunk) <= 1024:
                return
            key = chunk[1024][0]

    def count(self) -> int:
        if self.backend == LMDB:
            return int(self.handle.stat()["entries"])
        return sum(1 for _ in self.items())


def open_database(path: str, backend, where: str) -> DatabaseReader:
    return DatabaseReader(path, backend, where)


def forget_handles() -> None:
    """Close every database handle this process holds (tests; before deleting a database)."""
    for handle in _HANDLES.values():
        with contextlib.suppress(Exception):
            handle.close()
    _HANDLES.clear()


# ---------------------------------------------------------------------------
# writing databases
# ---------------------------------------------------------------------------
class DatabaseWriter:
    """Write (key, value) records into a new database that appears at ``path``
    only when the writer closes cleanly (temporary folder beside it, then rename)."""

    def __init__(self, path: str, backend: str):
        self.path = os.fspath(path)
        self.backend = backend_name(backend)
        if os.path.exists(self.path):
            raise DataError(f"'{self.path}' already exists; remove it first (Caffe's tools never "
                            f"overwrite a database)")
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise DataError(f"cannot write '{self.path}': the folder '{folder}' does not exist")
        self.tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=folder)
        self.pending: list[tuple[bytes, bytes]] = []
        self.written = 0
        self.db: Any
        if self.backend == LMDB:
            import lmdb
            self._map_size = 1 << 26
            self.db = lmdb.open(self.tmp, map_size=self._map_size, subdir=True, lock=True)
        else:
            import plyvel
            self.db = plyvel.DB(self.tmp, create_if_missing=True, error_if_exists=False)

    def put(self, key: bytes, value: bytes) -> None:
        self.pending.append((key, value))
        if len(self.pending) >= _COMMIT_EVERY:
            self.commit()

    def commit(self) -> None:
        if not self.pending:
            return
        if self.backend == LMDB:
            self._commit_lmdb()
        else:
            with self.db.write_batch() as batch:
                for key, value in self.pending:
                    batch.put(key, value)
        self.written += len(self.pending)
        self.pending = []

    def _commit_lmdb(self) -> None:
        import lmdb
        while True:
            try:
                with self.db.begin(write=True) as txn:
                    for key, value in self.pending:
                        txn.put(key, value)
                return
            except lmdb.MapFullError:  # grow the map as Caffe's LMDB writer does, and retry
                self._map_size *= 2
                self.db.set_mapsize(self._map_size)

    def close(self) -> None:
        """Finish: the database appears at ``path``."""
        self.commit()
        if self.backend == LMDB:
            self.db.sync(True)
            self.db.close()
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.tmp, "lock.mdb"))  # readers open it without locking
        else:
            self.db.close()
        os.chmod(self.tmp, 0o755)
        os.rename(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "DatabaseWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


def write_arrays(arrays, labels, path: str, backend: str = LMDB) -> int:
    """Write N x C x H x W ``arrays`` and N ``labels`` as raw Datums (uint8 arrays as
    bytes, anything else as float_data), keys ``%08d`` in row order. Returns N."""
    data = numpy.asarray(arrays)
    if data.dtype != numpy.uint8:
        data = data.astype(numpy.float32)
        if not numpy.isfinite(data).all():
            raise DataError("write_arrays: the arrays contain NaN or infinite values")
    if data.ndim == 2:
        data = data[:, :, None, None]
    if data.ndim != 4 or data.shape[0] == 0:
        raise DataError(f"write_arrays: need N x C x H x W arrays (N > 0), got shape {data.shape}")
    label = numpy.asarray(labels).reshape(-1)
    if label.shape[0] != data.shape[0]:
        raise DataError(f"write_arrays: {data.shape[0]} rows of data but {label.shape[0]} labels")
    if not numpy.all(label == numpy.round(label)):
        raise DataError("write_arrays: a Datum's label is an integer; the labels are not")
    with DatabaseWriter(path, backend) as writer:
        for i in range(data.shape[0]):
            writer.put(b"%08d" % i, array_to_datum(data[i], int(label[i])).SerializeToString())
    return int(data.shape[0])


# ---------------------------------------------------------------------------
# convert_imageset
# ---------------------------------------------------------------------------
@dataclass
class ListEntry:
    name: str
    label: int


def read_image_list(path: str) -> list[ListEntry]:
    """A ``path label`` list (one per line; the label follows the LAST space, so
    names may contain spaces, as Caffe's ``line.find_last_of(' ')``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise DataError(f"image list '{path}' cannot be read: {exc.strerror}") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        name, space, label = line.rpartition(" ")
        if not space or not name:
            raise DataError(f"{path}:{number}: expected 'path label', got {line!r}")
        try:
            entries.append(ListEntry(name, int(label)))
        except ValueError:
            raise DataError(f"{path}:{number}: the label {label!r} is not an integer") from None
    if not entries:
        raise DataError(f"image list '{path}' names no images")
    return entries


def _guess_encoding(name: str) -> str:
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    return "jpg" if ext == "jpeg" else ext


def _image_datum(path: str, label: int, height: int, width: int, is_color: bool,
                 encoding: str | None, where: str) -> caffe_pb2.Datum:
    """Caffe's ReadImageToDatum: file bytes kept as they are when they already fit."""
    data, image, resized = _read_image_file(path, height, width, is_color, where)
    if not resized and encoding and _guess_encoding(path) == encoding:
        return caffe_pb2.Datum(data=data, label=int(label), encoded=True)  # the file as it is
    return image_to_datum(image, label, encoding)


def convert_imageset(root: str, list_path: str, db_path: str, *, resize_height: int = 0,
                     resize_width: int = 0, gray: bool = False, shuffle: bool = False,
                     backend: str = LMDB, encoded: bool = False, encode_type: str = "",
                     check_size: bool = False, seed: int | None = None,
                     log: Callable[[str], None] | None = None) -> int:
    """Caffe's convert_imageset: the images of ``list_path`` (under ``root``) into a
    new database of Datums keyed ``%08d_<name>``. Unreadable images are skipped
    with a warning, as Caffe does. Returns the number of records written."""
    log = log or (lambda text: None)
    entries = read_image_list(list_path)
    if shuffle:
        order = numpy.random.default_rng(seed).permutation(len(entries))
        entries = [entries[i] for i in order]
    encoding = encode_type.lower().lstrip(".") if encode_type else ""
    encoding = "jpg" if encoding == "jpeg" else encoding
    if encoding and encoding not in ("png", "jpg"):
        raise DataError(f"convert_imageset: unknown encode_type '{encode_type}' (use png or jpg)")
    encoded = encoded or bool(encoding)
    height, width = max(0, int(resize_height)), max(0, int(resize_width))
    skipped = 0
    expected_size = None
    with DatabaseWriter(db_path, backend) as writer:
        for line_id, entry in enumerate(entries):
            path = root + entry.name
            kind = encoding or (_guess_encoding(entry.name) if encoded else None)
            if encoded and kind not in ("png", "jpg"):
                kind = "png"
            try:
                datum = _image_datum(path, entry.label, height, width, not gray, kind,
                                     f"convert_imageset: image '{path}' (line {line_id + 1})")
            except DataError as exc:
                print(f"warning: {exc}; skipped", file=sys.stderr)
                skipped += 1
                continue
            if check_size and not datum.encoded:
                size = (datum.channels, datum.height, datum.width)
                if expected_size is None:
                    expected_size = size
                elif size != expected_size:
                    raise DataError(f"convert_imageset: image '{path}' has size {size}, the first had "
                                    f"{expected_size} (--check_size)")
            writer.put(f"{line_id:08d}_{entry.name}".encode("utf-8"), datum.SerializeToString())
            if (line_id + 1) % 1000 == 0:
                log(f"Processed {line_id + 1} files.")
        count = writer.written + len(writer.pending)
        if count == 0:
            raise DataError(f"convert_imageset: none of the {len(entries)} images could be read")
    log(f"Processed {count} files" + (f" ({skipped} skipped)." if skipped else "."))
    return count


# ---------------------------------------------------------------------------
# compute_image_mean
# ---------------------------------------------------------------------------
def compute_image_mean(db_path: str, output: str | None = None, backend: str = LMDB,
                       log: Callable[[str], None] | None = None) -> numpy.ndarray:
    """Caffe's compute_image_mean: the per-pixel mean (1 x C x H x W float32) of a
    database's Datums, summed in float32 in key order as Caffe sums it; written as
    a BlobProto ``.binaryproto`` when ``output`` is given."""
    log = log or (lambda text: None)
    where = f"compute_image_mean: database '{db_path}'"
    reader = open_database(db_path, backend, where)
    total: numpy.ndarray | None = None
    count = 0
    for key, value in reader.items():
        record = f"{where}: record {key!r}"
        pixels = datum_pixels(parse_datum(value, record), record)
        if total is None:
            total = numpy.zeros(pixels.shape, numpy.float32)
        elif pixels.shape != total.shape:
            raise DataError(f"{record} has shape {pixels.shape}, the first record had {total.shape}")
        total += pixels.astype(numpy.float32)
        count += 1
        if count % 10000 == 0:
            log(f"Processed {count} files.")
    assert total is not None  # the reader refuses empty databases
    mean = (total / numpy.float32(count)).astype(numpy.float32)[None]
    if output:
        write_mean_file(mean, output)
    log(f"Processed {count} files.")
    log(f"Number of channels: {mean.shape[1]}")
    for c in range(mean.shape[1]):
        log(f"mean_value channel [{c}]: {float(mean[0, c].astype(numpy.float64).mean()):.6g}")
    return mean


def write_mean_file(mean: numpy.ndarray, path: str) -> None:
    """A BlobProto with Caffe's legacy num/channels/height/width fields, atomically."""
    from .atomic import write_bytes
    mean = numpy.asarray(mean, dtype=numpy.float32)
    if mean.ndim == 3:
        mean = mean[None]
    proto = caffe_pb2.BlobProto(num=mean.shape[0], channels=mean.shape[1], height=mean.shape[2],
                                width=mean.shape[3])
    proto.data.extend(mean.reshape(-1).tolist())
    write_bytes(path, proto.SerializeToString())


def read_mean_file(path: str, where: str) -> numpy.ndarray:
    """The C x H x W mean of a ``.binaryproto`` BlobProto (a 1 x C x H x W blob)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise DataError(f"{where}: mean_file '{path}' cannot be read: {exc.strerror}") from None
    proto = caffe_pb2.BlobProto()
    try:
        proto.ParseFromString(data)
    except Exception:
        raise DataError(f"{where}: mean_file '{path}' is not a BlobProto (.binaryproto)") from None
    if proto.HasField("shape"):
        shape = tuple(int(d) for d in proto.shape.dim)
    else:
        shape = tuple(int(d) for d in (proto.num, proto.channels, proto.height, proto.width))
    values = numpy.asarray(proto.double_data if len(proto.double_data) else proto.data, dtype=numpy.float32)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or shape[0] != 1 or values.size != int(numpy.prod(shape)) or values.size == 0:
        raise DataError(f"{where}: mean_file '{path}' holds {values.size} values for a blob of shape "
                        f"{shape}; expected one 1 x C x H x W mean image")
    return values.reshape(shape[1:])


__all__: Sequence[str] = (
    "DatabaseReader", "DatabaseWriter", "array_to_datum", "compute_image_mean", "convert_imageset",
    "datum_pixels", "decode_image", "encode_image", "image_to_datum", "open_database", "parse_datum",
    "read_image", "read_image_list", "read_mean_file", "resize_image", "write_arrays", "write_mean_file",
)
