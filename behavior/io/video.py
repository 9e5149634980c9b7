"""Video input: finding video files, probing them, and decoding frames once, resampled by time.

Decoding runs in a background thread that stays a few frames ahead, so the detector on the
main thread never waits for the decoder. Frames that resampling drops are only ``grab()``-ed,
never converted to images.

Example:
    >>> reader = FrameReader("clip.mp4", target_fps=15)  # doctest: +SKIP
    >>> for frame in reader:                              # doctest: +SKIP
    ...     print(frame.index, frame.time_s, frame.image.shape)
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from behavior.errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})


class VideoError(InputError):
    """A video that cannot be read: missing, empty, corrupt or without frames."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, before decoding it."""

    path: str
    size_bytes: int
    fps: float
    width: int
    height: int
    frame_count: int  # as reported by the container; may be approximate


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source, its time in seconds, and BGR pixels.

    ``between``: the source frames after this kept frame and before the next one, when the reader was asked for
    them (a video written at the source's rate shows them with this frame's boxes).
    """

    index: int
    time_s: float
    image: np.ndarray
    between: tuple[Frame, ...] = ()


def is_video_file(path: Path) -> bool:
    """True for a file whose extension (any case) is a supported video format."""
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def open_capture(source: str | int | Path) -> cv2.VideoCapture:
    """Open a file, camera index or stream URL; raise VideoError if it cannot be opened."""
    if not is_stream(source):
        path = Path(source)
        if not path.exists():
            raise VideoError(f"video not found: {path}")
        if path.is_dir():
            raise VideoError(f"expected a video file, got a folder: {path}")
        if path.stat().st_size == 0:
            raise VideoError(f"empty video file (0 bytes): {path}")
        source = str(path)
    elif isinstance(source, str) and source.isdigit():
        source = int(source)
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        if isinstance(source, int):
            raise VideoError(f"cannot open camera {source} (no such device, or it is in use)")
        if "://" in str(source):
            raise VideoError(f"cannot open stream {source} (unreachable, refused, or not a video stream)")
        raise VideoError(f"cannot open video (corrupt or unsupported format): {source}")
    return cap


def is_stream(source: str | int | Path) -> bool:
    """True for a camera index or a stream URL, which have no end and no frame count."""
    return isinstance(source, int) or str(source).isdigit() or "://" in str(source)


def require_display() -> None:
    """Raise InputError, before any work, when OpenCV cannot open a window here.

    Without a display ``cv2.imshow`` aborts the whole process (Qt's "could not connect to
    display"), leaving half-written outputs behind; a throwaway process tries it first.
    """
    import os
    import subprocess
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show needs a screen, but DISPLAY is not set here: run without --show "
                         "(annotated.mp4 is written either way)")
    probe = "import cv2; cv2.namedWindow('behavior'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise InputError("--show: opening a window timed out: run without --show") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1].strip()[:120] if lines else f"exit code {result.returncode}"
        raise InputError(f"--show cannot open a window on display {os.environ.get('DISPLAY', '')!r} ({detail}): "
                         "run without --show (annotated.mp4 is written either way)")


def probe_video(path: Path) -> VideoInfo:
    """Read a video's size, frame rate, dimensions and frame count without decoding it."""
    cap = open_capture(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise VideoError(f"video has no picture (0x0 frames): {path}")
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0  # containers without a usable rate: assume the common default
    return VideoInfo(str(path), Path(path).stat().st_size, fps, width, height, max(count, 0))


def keep_frame(index: int, fps: float, target_fps: float) -> bool:
    """Decide by timestamp whether frame ``index`` of a ``fps`` video is kept at ``target_fps``.

    A frame is kept when it is the first one to enter a new 1/target_fps time slot, so 25 fps
    and 60 fps sources both yield ``target_fps`` frames per second. Never upsamples.

    Example:
        >>> [i for i in range(10) if keep_frame(i, 30.0, 10.0)]
        [0, 3, 6, 9]
    """
    if target_fps <= 0 or target_fps >= fps:
        return True
    ratio = target_fps / fps
    slot = math.floor(index * ratio + 1e-9)
    return index == 0 or slot != math.floor((index - 1) * ratio + 1e-9)


def kept_ordinal(index: int, fps: float, target_fps: float) -> int:
    """The position of kept frame ``index`` among the kept frames (0, 1, 2, ...), as ``keep_frame`` keeps them.

    Later stages measure gaps in kept frames with it, from file names alone.

    Example:
        >>> [kept_ordinal(i, 30.0, 10.0) for i in (0, 3, 6, 9)]
        [0, 1, 2, 3]
    """
    if target_fps <= 0 or target_fps >= fps:
        return index
    return math.floor(index * target_fps / fps + 1e-9)


def expected_kept_frames(frame_count: int, fps: float, target_fps: float) -> int:
    """How many frames ``keep_frame`` keeps out of ``frame_count``; used for progress totals."""
    if target_fps <= 0 or target_fps >= fps:
        return frame_count
    return math.floor((frame_count - 1) * target_fps / fps + 1e-9) + 1 if frame_count else 0


class FrameReader:
    """Iterate over the kept frames of a video or stream, decoding each frame exactly once.

    After iteration, ``frames_read`` holds the number of source frames decoded and
    ``frames_kept`` the number yielded. With ``between``, each kept frame also carries the source
    frames up to the next kept one (``Frame.between``), and is yielded once that one is decoded.

    Example:
        >>> [len(f.between) for f in FrameReader("clip_30fps.mp4", 15.0, between=True)]  # doctest: +SKIP
        [1, 1, 1, ...]
    """

    def __init__(
        self,
        source: str | int | Path,
        target_fps: float = 0.0,
        fps: float | None = None,
        prefetch: int = 8,
        between: bool = False,
    ) -> None:
        self.source = source
        self.target_fps = target_fps
        self.prefetch = prefetch
        self.between = between
        self._cap = open_capture(source)
        reported = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps or (reported if math.isfinite(reported) and 0 < reported <= 1000 else 30.0)
        count = 0 if is_stream(source) else int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = expected_kept_frames(count, self.fps, target_fps) if count > 0 else None  # for progress bars
        self.frames_read = 0
        self.frames_kept = 0
        self._stop = threading.Event()

    def _decode(self, out: queue.Queue) -> None:
        """Background thread: grab every frame, convert only the kept ones (and, with ``between``, the others)."""
        cap, held, extra = self._cap, None, []  # the kept frame waiting for its between-frames, and those
        try:
            index = 0
            while not self._stop.is_set():
                if not cap.grab():
                    break
                self.frames_read = index + 1
                kept = keep_frame(index, self.fps, self.target_fps)
                if kept or (self.between and held is not None):
                    ok, image = cap.retrieve()
                    if ok and image is not None:
                        frame = Frame(index, index / self.fps, image)
                        if not self.between:
                            self._put(out, frame)
                        elif not kept:
                            extra.append(frame)
                        else:
                            if held is not None:
                                self._put(out, replace(held, between=tuple(extra)))
                            held, extra = frame, []
                index += 1
            if held is not None:
                self._put(out, replace(held, between=tuple(extra)))
        except Exception as exc:  # surfaced on the consumer's thread
            out.put(exc)
        finally:
            out.put(None)

    def _put(self, out: queue.Queue, frame: Frame) -> None:
        """Queue one frame for the consumer, waiting while the queue is full unless asked to stop."""
        while not self._stop.is_set():
            try:
                out.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        ahead = self.prefetch
        if self.between and 0 < self.target_fps < self.fps:  # about ``prefetch`` source frames held, not kept ones
            ahead = max(2, math.ceil(self.prefetch * self.target_fps / self.fps))
        frames: queue.Queue = queue.Queue(maxsize=ahead)
        worker = threading.Thread(target=self._decode, args=(frames,), daemon=True, name="decode")
        worker.start()
        try:
            while True:
                item = frames.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise VideoError(f"decoding failed: {item}") from item
                self.frames_kept += 1
                yield item
        finally:
            self._stop.set()
            while worker.is_alive() and worker is not threading.current_thread():  # (a collector may close us there)
                try:
                    frames.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._cap.release()


class _OpenCvEncoder:
    """MPEG-4 Part 2 (or another fourcc) through OpenCV: fast, but browsers do not play it."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], fourcc: str) -> None:
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
        if not self._writer.isOpened():
            raise VideoError(f"cannot write video {path.name} (codec {fourcc!r} unavailable?)")

    def write(self, image: np.ndarray) -> None:
        self._writer.write(image)

    def close(self) -> None:
        self._writer.release()


class _H264Encoder:
    """H.264 (libx264 in PyAV's FFmpeg), which every browser plays: the annotated video of a report page."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        from fractions import Fraction

        import av

        self._out = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = size[0] - size[0] % 2, size[1] - size[1] % 2  # yuv420p: even
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": "ultrafast", "crf": "23"}  # 4.2 ms a 720p frame (superfast 6.6)
        self._frame_type = av.VideoFrame

    def write(self, image: np.ndarray) -> None:
        frame = self._frame_type.from_ndarray(image[: self._stream.height, : self._stream.width], format="bgr24")
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._out.mux(packet)
        self._out.close()


class VideoWriter:
    """Write BGR frames to an .mp4 under a temporary name, renamed into place on ``close()``.

    ``codec`` "h264" makes a file every browser plays (predict.py's annotated.mp4, shown in its report page);
    "mp4v" (MPEG-4 Part 2, OpenCV's) is faster to encode and is what the sample clips are made with. Encoding runs
    on a background thread (a few frames queued), so the caller never waits for the encoder. An interrupted write
    leaves no half-written file under the final name.

    Example:
        >>> with VideoWriter(Path("out.mp4"), fps=25, size=(640, 480)) as out:  # doctest: +SKIP
        ...     out.write(frame)
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], codec: str = "mp4v") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._writer = _H264Encoder(self._tmp, fps, size) if codec == "h264" else _OpenCvEncoder(self._tmp, fps, size,
                                                                                                  codec)
        self.size = size
        self.frames = 0
        self._error: Exception | None = None  # the encoder's, raised in the caller's thread
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._encode, daemon=True, name="encode")
        self._thread.start()

    def _encode(self) -> None:
        while (image := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write(image)
                except Exception as exc:  # a full disk: the caller raises it at its next frame
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame of the writer's size (the writer keeps a reference: do not modify it after)."""
        self._raise()
        self._queue.put(image)
        self.frames += 1

    def _finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            self._writer.close()
        except Exception as exc:
            self._error = self._error or exc

    def close(self) -> Path:
        """Finish the file and move it to its final name."""
        self._finish()
        self._raise()
        self._tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        self._finish()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
