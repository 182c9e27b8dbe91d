"""Video decode and output writing on background threads, so they overlap with inference.

OpenCV releases the GIL while it decodes, encodes and draws, so a reader thread and a writer thread
hide most of their cost behind the model. Both queues are bounded: memory stays flat on long videos.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

_DONE = object()


#: Image types OpenCV reads and writes in every build: what a folder of frames, predict.py's images, Phase 3's
#: frames and background photos may be (Ultralytics also lists HEIC, AVIF, MPO and DNG as images).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2")


#: Frame rate of a folder of frames, which has none of its own (video.py's --folder_fps sets another).
FOLDER_FPS = 30.0


class FrameFolder:
    """A folder of images read like `cv2.VideoCapture` (file-name order, a nominal frame rate), so datasets
    that ship frames instead of videos go through the same pipeline."""

    def __init__(self, folder: Path, fps: float = FOLDER_FPS):
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.fps, self.next = fps, 0

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's API)
        return bool(self.files)

    def grab(self) -> bool:
        self.next += 1
        return self.next <= len(self.files)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.next >= len(self.files):
            return False, None
        image = cv2.imread(str(self.files[self.next]))
        if image is None:
            raise ValueError(f"cannot read frame {self.files[self.next]}")
        self.next += 1
        return True, image

    def set(self, prop: int, value: float) -> bool:
        if prop != cv2.CAP_PROP_POS_FRAMES:
            return False
        self.next = int(value)
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: float(len(self.files))}.get(prop, 0.0)

    def release(self) -> None:
        self.files = []


def open_video(path: Path, folder_fps: float = FOLDER_FPS) -> cv2.VideoCapture | FrameFolder:
    """A capture for a video file, or for a folder of frames."""
    return FrameFolder(path, folder_fps) if path.is_dir() else cv2.VideoCapture(str(path))


def spread(total: int, count: int) -> list[int]:
    """Up to `count` distinct indices into `total` items, spread evenly from the first to the last."""
    return np.unique(np.linspace(0, max(total - 1, 0), count).astype(int)).tolist()


def sample_frames(path: str | Path, count: int) -> list[np.ndarray]:
    """Up to `count` frames spread evenly over a video or a folder of frames (e.g. to calibrate INT8)."""
    cap = open_video(Path(path))
    frames = []
    try:
        for index in spread(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), count):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
    finally:
        cap.release()
    return frames


class VideoReader:
    """Frames `(index, image)` of a video (or a folder of frames), every `stride`-th one, decoded ahead on a
    thread."""

    def __init__(self, path: str | Path, stride: int = 1, prefetch: int = 8, folder_fps: float = FOLDER_FPS):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"video not found: {self.path}")
        self.cap = open_video(self.path, folder_fps)
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok:
            self.cap.release()
            raise ValueError(f"cannot decode video {self.path}: corrupt, empty, an unsupported codec "
                             "or a folder without images")
        self.first = first
        #: the image stems of a folder of frames, in reading order (outputs are named after them); None for a video
        self.names = [p.stem for p in self.cap.files] if isinstance(self.cap, FrameFolder) else None
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.size = (first.shape[1], first.shape[0])
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.stride = max(1, int(stride))
        self.queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._decode, daemon=True)  # started by the first iteration

    def __len__(self) -> int:
        """Number of frames that will be yielded (from the container's frame count, which may be approximate)."""
        return -(-self.frame_count // self.stride)

    def _decode(self) -> None:
        try:
            index, frame = 0, self.first
            while frame is not None and not self.stop.is_set():
                self.queue.put((index, frame))
                for _ in range(self.stride - 1):  # skipped frames: demux and decode, but no colour conversion
                    if not self.cap.grab():
                        return
                ok, frame = self.cap.read()
                index += self.stride
                frame = frame if ok else None
                if frame is not None and (frame.shape[1], frame.shape[0]) != self.size:
                    raise ValueError(f"{self.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the first "
                                     f"was {self.size[0]}x{self.size[1]}; a video's frames must be of one size")
        except BaseException as e:  # surface decode errors in the consuming thread
            self.queue.put(e)
        finally:
            self.cap.release()
            self.queue.put(_DONE)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        self.thread.start()
        while (item := self.queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop decoding early (e.g. on Ctrl-C) and release the file."""
        self.stop.set()
        if not self.thread.is_alive():
            self.cap.release()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass


class Worker:
    """Runs submitted jobs in order on one background thread; errors re-raise on the next submit or close."""

    def __init__(self, backlog: int = 8):
        self.queue: queue.Queue = queue.Queue(maxsize=backlog)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while (job := self.queue.get()) is not _DONE:
            if self.error is None:
                try:
                    job()
                except BaseException as e:
                    self.error = e

    def submit(self, job: Callable[[], None]) -> None:
        """Queue `job`; blocks while the backlog is full, so a slow disk slows the loop instead of filling RAM."""
        if self.error is not None:
            raise self.error
        self.queue.put(job)

    def close(self) -> None:
        """Finish every queued job, then stop; re-raise the first job error."""
        self.queue.put(_DONE)
        self.thread.join()
        if self.error is not None:
            raise self.error


def video_writer(path: str | Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An MP4 writer (`mp4v`: the codec every OpenCV build can encode)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the MPEG-4 time base is 1000/round(1000 fps), its denominator at most 65535: 119.8874 or 200/3 fps are
    # refused, the same rates to two decimals are not
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), round(fps, 2), size)
    if not writer.isOpened():
        raise ValueError(f"cannot write {path} at {fps:g} fps and {size[0]}x{size[1]}")
    return writer
