import numpy as np
import pytest

from behavior.io.video import (
    FrameReader,
    VideoError,
    VideoWriter,
    expected_kept_frames,
    is_stream,
    is_video_file,
    keep_frame,
    open_capture,
    probe_video,
)
from tools.synthetic import ClipSpec, write_clip


@pytest.mark.parametrize("fps", [20.0, 25.0, 29.97, 30.0, 60.0])
def test_resampling_keeps_the_target_rate(fps):
    kept = [i for i in range(int(fps * 10)) if keep_frame(i, fps, 10.0)]
    assert abs(len(kept) - 100) <= 1  # ten seconds at 10 fps, whatever the source rate
    gaps = np.diff(np.asarray(kept) / fps)
    assert gaps.max() < 0.1 + 1.0 / fps  # evenly spread in time


def test_never_upsamples():
    assert all(keep_frame(i, 10.0, 30.0) for i in range(50))
    assert all(keep_frame(i, 25.0, 0) for i in range(50))


@pytest.mark.parametrize("count,fps,target", [(53, 25.0, 15.0), (142, 30.0, 15.0), (20, 18.0, 15.0), (90, 60.0, 10.0)])
def test_expected_kept_frames_matches_keep_frame(count, fps, target):
    assert expected_kept_frames(count, fps, target) == sum(keep_frame(i, fps, target) for i in range(count))


def test_reader_decodes_every_frame_once(tmp_path):
    path = write_clip(tmp_path / "a.mp4", ClipSpec(width=160, height=120, fps=20.0, seconds=1.0, seed=1))
    reader = FrameReader(path, target_fps=10.0)
    frames = list(reader)
    assert reader.frames_read == 20
    assert [f.index for f in frames] == [i for i in range(20) if keep_frame(i, 20.0, 10.0)]
    assert frames[1].time_s == pytest.approx(frames[1].index / 20.0)
    assert frames[0].image.shape == (120, 160, 3)


@pytest.mark.parametrize("fps,target", [(20.0, 10.0), (25.0, 15.0), (20.0, 0.0)])
def test_reader_hands_the_frames_between_kept_ones_along(tmp_path, fps, target):
    """With ``between``, the same kept frames, each followed by the source frames up to the next kept one."""
    path = write_clip(tmp_path / "a.mp4", ClipSpec(width=160, height=120, fps=fps, seconds=1.0, seed=1))
    plain = list(FrameReader(path, target_fps=target))
    every = list(FrameReader(path, target_fps=target, between=True))
    assert [f.index for f in every] == [f.index for f in plain]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(every, plain, strict=True))
    shown = [g for f in every for g in (f, *f.between)]
    assert [g.index for g in shown] == list(range(int(fps)))  # every source frame once, in order
    assert all(g.time_s == pytest.approx(g.index / fps) for g in shown)
    assert not any(f.between for f in plain)


def test_reader_can_stop_early(tmp_path):
    path = write_clip(tmp_path / "a.mp4", ClipSpec(width=160, height=120, fps=20.0, seconds=2.0, seed=1))
    for n, _ in enumerate(FrameReader(path, prefetch=2)):
        if n == 3:
            break  # the decoding thread must stop and release the file


def test_probe(tmp_path):
    path = write_clip(tmp_path / "a.mp4", ClipSpec(width=160, height=120, fps=25.0, seconds=1.0, seed=1))
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (160, 120, 25.0, 25)
    assert info.size_bytes == path.stat().st_size


def test_bad_videos_raise_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        open_capture(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        open_capture(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(1024))
    with pytest.raises(VideoError, match="cannot open"):
        probe_video(tmp_path / "junk.mp4")


def test_video_extensions_any_case(tmp_path):
    for name in ("a.MP4", "b.avi", "c.MoV", "d.mkv", "e.WEBM"):
        (tmp_path / name).write_bytes(b"x")
        assert is_video_file(tmp_path / name)
    (tmp_path / "f.txt").write_bytes(b"x")
    assert not is_video_file(tmp_path / "f.txt")


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), VideoWriter(target, 10, (64, 48)) as out:
        out.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("interrupted")
    assert not target.exists() and not list(tmp_path.iterdir())
    with VideoWriter(target, 10, (64, 48)) as out:
        for _ in range(5):
            out.write(np.zeros((48, 64, 3), np.uint8))
    assert probe_video(target).frame_count == 5


@pytest.mark.parametrize("fps,target", [(25.0, 15.0), (60.0, 15.0), (29.97, 10.0), (10.0, 15.0), (30.0, 0.0)])
def test_kept_ordinal_counts_kept_frames(fps, target):
    from behavior.io.video import kept_ordinal

    kept = [i for i in range(300) if keep_frame(i, fps, target)]
    assert [kept_ordinal(i, fps, target) for i in kept] == list(range(len(kept)))


def test_reader_knows_its_total_for_progress_bars(tmp_path):
    """A file's progress bar shows a total (and so an ETA); a camera or stream has none."""
    path = write_clip(tmp_path / "c.mp4", ClipSpec(persons=1, width=160, height=120, fps=20.0, seconds=2.0))
    reader = FrameReader(path, target_fps=5.0)
    assert reader.total == sum(1 for _ in reader) == 10
    assert is_stream(0) and is_stream("rtsp://host/live") and not is_stream(path)


def test_cameras_and_streams_say_so(tmp_path):
    with pytest.raises(VideoError, match="cannot open camera 97"):
        open_capture("97")
    with pytest.raises(VideoError, match="cannot open stream rtsp://127.0.0.1:9/x"):
        open_capture("rtsp://127.0.0.1:9/x")
