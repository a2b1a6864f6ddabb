"""Recordings of the window or of chosen panels (Qt-free): MP4 through the FFmpeg that
the ``imageio-ffmpeg`` wheel ships (the optional extra ``record``), GIF through Pillow
(always available).

A :class:`Recording` takes RGB frames (H×W×3 uint8) with a caption each — the step
event and the iteration (:func:`caption_for`) — burns the caption into a strip
under the picture and hands the frame to an encoder thread through a short queue,
so the thread that grabs the pictures never waits for the encoder (a frame that
finds the queue full is dropped and counted). A step-through records one frame
per event; a run is sampled at a chosen rate (:class:`SampleClock`). The file is
written under a temporary name and moved into place when the recording closes.
"""
from __future__ import annotations

import os
import queue
import re
import threading
import time
from dataclasses import dataclass

import numpy

#: Height of the caption strip under each frame (pixels), and its font size.
CAPTION_HEIGHT, CAPTION_PT = 30, 17
#: A GIF is scaled to at most this width (a full-size GIF of a minute would be huge).
GIF_MAX_WIDTH = 800
#: Frames waiting for the encoder at most; a frame that finds the queue full is dropped.
QUEUE_FRAMES = 8
FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf")


def mp4_available() -> tuple[bool, str]:
    """(True, "") when MP4 can be written; else (False, how to get it)."""
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        return False, f"MP4 needs imageio-ffmpeg: pip install -e '.[record]' ({exc})"
    return True, ""


def product_caption(product: str) -> str:
    """'dW [16×16] += δᵀ [16×32] · a [32×16]' -> 'dW = δᵀ·a [16×32]·[32×16]' (the first term)."""
    match = re.match(r"\s*(\S+)(?: \[[^\]]*\])?\s*\+?=\s*(.*)", product)
    if not match:
        return product
    target, expression = match.groups()
    first_term = expression.split(" + ")[0]
    operands = re.findall(r"(\S+) \[([^\]]*)\]", first_term)
    if not operands:
        return f"{target} = {first_term}"
    names = "·".join(name for name, _ in operands)
    shapes = "·".join(f"[{shape}]" for _, shape in operands)
    return f"{target} = {names} {shapes}"


def caption_for(event, iteration: int) -> str:
    """The caption of a frame: the step event (with its first product) and the iteration."""
    if event is None:
        return f"iteration {iteration}"
    kind = getattr(event, "kind", str(event))
    layer = getattr(event, "layer", None)
    products = list(getattr(event, "products", []) or [])
    if kind == "update":
        return f"update: W ← W − V (all layers) · iteration {getattr(event, 'iteration', iteration)} → {iteration}"
    where = f"{kind} {layer}" if layer else kind
    what = f": {product_caption(products[0])}" if products else ""
    return f"{where}{what} · iteration {getattr(event, 'iteration', iteration)}"


class SampleClock:
    """Says when a run's next frame is due, ``fps`` times a second (wall clock)."""

    def __init__(self, fps: float, clock=time.perf_counter):
        if fps <= 0:
            raise ValueError(f"frame rate must be above 0, not {fps}")
        self.period = 1.0 / fps
        self._clock = clock
        self._next: float | None = None

    def due(self) -> bool:
        now = self._clock()
        if self._next is None or now >= self._next:
            self._next = (now if self._next is None else max(self._next, now - self.period)) + self.period
            return True
        return False


def _font(size: int):
    from PIL import ImageFont
    for path in FONT_PATHS:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def captioned(rgb: numpy.ndarray, caption: str, font=None) -> numpy.ndarray:
    """``rgb`` with a white strip below it holding ``caption`` (H+CAPTION_HEIGHT × W × 3 uint8)."""
    from PIL import Image, ImageDraw
    height, width = rgb.shape[:2]
    strip = Image.new("RGB", (width, CAPTION_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(strip).text((8, 5), caption, fill=(20, 20, 20), font=font or _font(CAPTION_PT))
    return numpy.vstack([numpy.ascontiguousarray(rgb[:, :, :3], dtype=numpy.uint8), numpy.asarray(strip)])


def even_size(rgb: numpy.ndarray) -> numpy.ndarray:
    """Cropped to even width and height (the yuv420p that players expect needs them)."""
    height, width = rgb.shape[:2]
    return rgb[: height - height % 2, : width - width % 2]


@dataclass
class RecordingSummary:
    path: str
    frames: int
    dropped: int
    seconds: float  # of video
    bytes: int


class _Mp4Sink:
    def __init__(self, path: str, size: tuple[int, int], fps: float):
        import imageio_ffmpeg
        self._writer = imageio_ffmpeg.write_frames(
            path, size, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
            macro_block_size=2, output_params=["-preset", "veryfast", "-tune", "stillimage", "-crf", "26",
                                               "-threads", "1", "-f", "mp4"],
            ffmpeg_log_level="error")
        self._writer.send(None)

    def write(self, rgb: numpy.ndarray) -> None:
        self._writer.send(numpy.ascontiguousarray(rgb))

    def close(self) -> None:
        self._writer.close()


class _GifSink:
    def __init__(self, path: str, size: tuple[int, int], fps: float):
        self.path, self.fps = path, fps
        self.scale = min(1.0, GIF_MAX_WIDTH / size[0])
        self.frames: list = []

    def write(self, rgb: numpy.ndarray) -> None:
        from PIL import Image
        image = Image.fromarray(rgb)
        if self.scale < 1.0:
            image = image.resize((int(rgb.shape[1] * self.scale), int(rgb.shape[0] * self.scale)),
                                 Image.Resampling.LANCZOS)
        self.frames.append(image.quantize(colors=128, method=Image.Quantize.MEDIANCUT))

    def close(self) -> None:
        if self.frames:
            self.frames[0].save(self.path, format="GIF", save_all=True, append_images=self.frames[1:],
                                duration=max(20, int(round(1000 / self.fps))), loop=0, optimize=False)


class Recording:
    """An open recording to ``path`` (.mp4 or .gif) at ``fps`` frames per second of video.

    :meth:`add` is cheap for the caller (a queue put); the encoder thread burns in the
    caption and writes. :meth:`close` waits for the queue, finishes the file and
    returns a :class:`RecordingSummary`. The first frame fixes the size; later frames
    of another size (a resized window) are fitted onto a canvas of the first one's size.
    """

    def __init__(self, path: str, fps: float = 10.0):
        kind = os.path.splitext(path)[1].lower()
        if kind not in (".mp4", ".gif"):
            raise ValueError(f"record to .mp4 or .gif, not '{kind or path}'")
        if kind == ".mp4":
            ok, why = mp4_available()
            if not ok:
                raise RuntimeError(why)
        if fps <= 0:
            raise ValueError(f"frame rate must be above 0, not {fps}")
        self.path, self.kind, self.fps = os.path.abspath(path), kind, float(fps)
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        self._tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(self.path)}")
        self.frames = 0
        self.dropped = 0
        self._size: tuple[int, int] | None = None  # (width, height) of the video
        self._sink: _Mp4Sink | _GifSink | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._font = _font(CAPTION_PT)
        self._thread = threading.Thread(target=self._encode, name="recording", daemon=True)
        self._thread.start()
        self.closed = False

    def add(self, rgb: numpy.ndarray, caption: str, *, wait: bool = False) -> bool:
        """Queue one frame; False when it was dropped (the encoder is behind) or the
        recording is closed. ``wait``: block instead of dropping (one frame per event)."""
        if self.closed:
            return False
        if self._error is not None:
            raise RuntimeError(f"recording to {self.path} failed: {self._error}")
        try:
            self._queue.put((rgb, caption), block=wait, timeout=30 if wait else None)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _fit(self, rgb: numpy.ndarray) -> numpy.ndarray:
        assert self._size is not None
        width, height = self._size
        if rgb.shape[1] == width and rgb.shape[0] == height:
            return rgb
        canvas = numpy.full((height, width, 3), 255, numpy.uint8)
        h, w = min(height, rgb.shape[0]), min(width, rgb.shape[1])
        canvas[:h, :w] = rgb[:h, :w]
        return canvas

    def _encode(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                rgb, caption = item
                frame = even_size(captioned(rgb, caption, self._font))
                if self._sink is None:
                    self._size = (frame.shape[1], frame.shape[0])
                    sink_class = _Mp4Sink if self.kind == ".mp4" else _GifSink
                    self._sink = sink_class(self._tmp, self._size, self.fps)
                self._sink.write(self._fit(frame))
                self.frames += 1
            except Exception as exc:  # reported by add() and close()
                self._error = exc

    def close(self) -> RecordingSummary:
        """Finish the file (moved into place) and say what was written."""
        if not self.closed:
            self.closed = True
            self._queue.put(None)
            self._thread.join()
            if self._sink is not None:
                self._sink.close()
            if self._error is not None:
                _remove(self._tmp)
                raise RuntimeError(f"recording to {self.path} failed: {self._error}")
            if self.frames == 0:
                _remove(self._tmp)
                raise RuntimeError(f"no frames were recorded; {self.path} was not written")
            os.replace(self._tmp, self.path)
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        return RecordingSummary(self.path, self.frames, self.dropped, self.frames / self.fps, size)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def read_video_frames(path: str) -> list[numpy.ndarray]:
    """Decode a recording back to RGB frames (for tests and checks): MP4 through FFmpeg, GIF through Pillow."""
    if path.lower().endswith(".gif"):
        from PIL import Image, ImageSequence
        with Image.open(path) as image:
            return [numpy.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
    import imageio_ffmpeg
    reader = imageio_ffmpeg.read_frames(path)
    meta = reader.__next__()
    width, height = meta["size"]
    return [numpy.frombuffer(raw, numpy.uint8).reshape(height, width, 3) for raw in reader]
