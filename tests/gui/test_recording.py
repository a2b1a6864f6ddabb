"""Recordings: captions name the step event and the iteration; frames written to MP4
(imageio-ffmpeg) or GIF (Pillow) decode back to what was recorded; a run is sampled
at the chosen rate; the Record action and ``main.py --record`` write a playable file."""
from __future__ import annotations

import os

import numpy
import pytest

import engine
from gui.model import recording as rec

SPIRAL = "resources/examples/spiral_mlp/solver.prototxt"
needs_mp4 = pytest.mark.skipif(not rec.mp4_available()[0], reason="imageio-ffmpeg not installed")


def _events():
    solver = engine.get_solver(SPIRAL)
    return [e for e in solver.iteration_events() if e.kind in ("forward", "backward", "update")]


def test_caption_names_the_product_with_its_shapes():
    backward = next(e for e in _events() if e.kind == "backward" and e.layer == "ip2")
    assert rec.caption_for(backward, 0) == "backward ip2: dW = δᵀ·a [16×32]·[32×16] · iteration 0"
    forward = next(e for e in _events() if e.kind == "forward" and e.layer == "ip3")
    assert rec.caption_for(forward, 0) == "forward ip3: top = a·Wᵀ [32×16]·[16×3] · iteration 0"
    relu = next(e for e in _events() if e.layer == "relu1")
    assert rec.caption_for(relu, 0) == "forward relu1 · iteration 0"
    assert rec.caption_for(None, 41) == "iteration 41"


def test_sample_clock_fires_at_the_chosen_rate():
    now = [0.0]
    clock = rec.SampleClock(4.0, clock=lambda: now[0])
    fired = 0
    for _ in range(1000):  # 10 s in steps of 10 ms
        fired += clock.due()
        now[0] += 0.01
    assert fired in (40, 41)
    with pytest.raises(ValueError):
        rec.SampleClock(0)


def _frames(count: int, width: int = 160, height: int = 90) -> list[numpy.ndarray]:
    frames = []
    for k in range(count):
        rgb = numpy.zeros((height, width, 3), numpy.uint8)
        rgb[:, :, k % 3] = 60 + 15 * k
        frames.append(rgb)
    return frames


def _check_decoded(decoded, frames, tolerance: int) -> None:
    assert len(decoded) == len(frames)
    for got, sent in zip(decoded, frames):
        assert got.shape[0] == sent.shape[0] + rec.CAPTION_HEIGHT
        middle = got[sent.shape[0] // 2, sent.shape[1] // 2].astype(int)
        assert numpy.all(numpy.abs(middle - sent[0, 0].astype(int)) <= tolerance)
        strip = got[sent.shape[0]:]
        assert strip.mean() > 200 and strip.min() < 100  # white strip with dark text


def test_gif_recording_decodes_to_the_frames_with_captions(tmp_path):
    frames = _frames(5)
    recording = rec.Recording(str(tmp_path / "out.gif"), fps=5)
    for k, rgb in enumerate(frames):
        assert recording.add(rgb, f"frame {k}", wait=True)
    summary = recording.close()
    assert summary.frames == 5 and summary.dropped == 0 and summary.seconds == 1.0
    _check_decoded(rec.read_video_frames(summary.path), frames, tolerance=12)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


@needs_mp4
def test_mp4_recording_decodes_to_the_frames_with_captions(tmp_path):
    frames = _frames(12, 161, 91)  # odd sizes are cropped to even
    recording = rec.Recording(str(tmp_path / "out.mp4"), fps=10)
    for k, rgb in enumerate(frames):
        recording.add(rgb, f"backward ip{k}", wait=True)
    summary = recording.close()
    assert summary.frames == 12 and summary.bytes > 0
    decoded = rec.read_video_frames(summary.path)
    assert decoded[0].shape == (90 + rec.CAPTION_HEIGHT, 160, 3)
    _check_decoded(decoded, [f[:90, :160] for f in frames], tolerance=24)


def test_bad_requests_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="mp4 or .gif"):
        rec.Recording(str(tmp_path / "out.avi"))
    recording = rec.Recording(str(tmp_path / "none.gif"))
    with pytest.raises(RuntimeError, match="no frames"):
        recording.close()
    assert not os.path.exists(tmp_path / "none.gif")


# -- in the window -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def window(qapp):
    from tests.gui.windows import module_window
    with module_window() as window:
        window.open_path(SPIRAL)
        qapp.processEvents()
        yield window


def test_step_through_recording_has_one_frame_per_event(window, qapp, tmp_path):
    recorder = window.recorder
    curves = recorder.panels()["Curves"]
    recorder.start(str(tmp_path / "events.gif"), fps=4, panels=["Curves"], per_event=True)
    captions = []
    for _ in range(4):
        window.step_event()
        assert window.wait_until_idle()
        captions.append(recorder.caption())
    summary = recorder.stop()
    assert summary.frames == 1 + 4 and summary.seconds == 5 / 4
    frames = rec.read_video_frames(summary.path)
    assert len(frames) == 5
    scale = min(1.0, rec.GIF_MAX_WIDTH / (curves.width() - curves.width() % 2))
    assert abs(frames[0].shape[1] - int((curves.width() - curves.width() % 2) * scale)) <= 1
    assert captions[1] == "forward ip1: top = a·Wᵀ [32×2]·[2×16] · iteration 0"
    assert not recorder.active


def test_record_headless_writes_a_playable_file(window, qapp, tmp_path):
    from gui.app import parse_args
    from gui.views.recording import record_headless
    out = tmp_path / ("run.mp4" if rec.mp4_available()[0] else "run.gif")
    args = parse_args([SPIRAL, "--record", str(out), "--steps", "3", "--events", "--fps", "5",
                       "--size", "800x600"])
    assert record_headless(args) == 0
    frames = rec.read_video_frames(str(out))
    assert len(frames) >= 4  # the start, one per event, the end
    strip = frames[-1][-rec.CAPTION_HEIGHT + 4:]
    assert strip.mean() > 200 and strip.min() < 100  # the caption under the window
