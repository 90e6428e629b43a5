"""A crash-safe 16-bit PCM WAV writer, a repair for files cut off by a crash, and a reader.

The recorder must leave a playable file behind whatever happens to its process (issue 4, part 3:
"after a crash, the cut-off recording is repaired on restart"). So the writer
- puts the 44-byte RIFF/WAVE header first, with sizes 0: an empty but valid file from the start;
- rewrites the two size fields on every `flush()`, after the audio is on disk: the file on disk is
  a valid WAV after every flush, and never claims audio that is not there;
- only ever creates files (O_EXCL): it cannot overwrite, hence cannot corrupt, a finished file.
A process killed between flushes leaves a valid header with too-small sizes plus audio after it
(whatever reached the page cache); `repair()` recomputes the sizes from the file length.

Layout written: 'RIFF' size 'WAVE', 'fmt ' (16 bytes, PCM), 'data' size, then interleaved
little-endian int16 frames. The data chunk is always last, which is what lets `repair()` take
"everything after the data header" as audio.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER_BYTES = 44
SAMPLE_BYTES = 2                       # int16 only: what RTP's G.711/G.722 decode to
_MAX_DATA = 0xFFFFFFFF - 36            # RIFF sizes are 32-bit: ~37 h of 8 kHz stereo
_PCM, _EXTENSIBLE = 1, 0xFFFE
BUFFER_BYTES = 1 << 16


def _header(rate: int, channels: int, data_bytes: int) -> bytes:
    block = channels * SAMPLE_BYTES
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       _PCM, channels, rate, rate * block, block, 8 * SAMPLE_BYTES,
                       b"data", data_bytes)


class WavWriter:
    """Appends interleaved int16 frames to a new WAV file; valid on disk after every flush.

    Not thread-safe: the owner (store.RecordingWriter) serialises calls with its own lock.
    """

    def __init__(self, path: str | os.PathLike, rate: int = 8000, channels: int = 2) -> None:
        if rate <= 0 or channels <= 0:
            raise ValueError(f"rate and channels must be positive, got {rate}, {channels}")
        self.path = Path(path)
        self.rate = rate
        self.channels = channels
        self.frames = 0                   # frames appended so far (flushed or not)
        self._dirty = False
        # "xb": refuse to open an existing file, so no writer can ever clobber a finished one
        # a 64 KiB buffer holds 1 s of 16 kHz stereo: appends between two flushes make no
        # system call (a recorder's store lanes then rarely give up the GIL: docs/scaling.md)
        self._f = open(self.path, "xb", buffering=BUFFER_BYTES)
        self._f.write(_header(rate, channels, 0))
        self._sync()                      # the header exists before any audio can
        self._staged = 0                  # data bytes handed to the OS by stage()
        self._claimed = 0                 # data bytes the header says (as last written)

    @property
    def data_bytes(self) -> int:
        return self.frames * self.channels * SAMPLE_BYTES

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    @property
    def closed(self) -> bool:
        return self._f.closed

    @property
    def dirty(self) -> bool:
        """True when frames were appended since the last flush."""
        return self._dirty

    def append(self, frames: np.ndarray) -> None:
        """Append ``frames``: int16, shape (n, channels)."""
        frames = np.asarray(frames)
        if frames.dtype != np.int16:
            # no silent conversion: a float array here is a caller bug, not audio to clip
            raise TypeError(f"frames must be int16, got {frames.dtype}")
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(f"frames must have shape (n, {self.channels}), got {frames.shape}")
        if self.data_bytes + frames.nbytes > _MAX_DATA:
            raise ValueError("WAV data chunk would exceed 4 GiB")
        if frames.size == 0:
            return
        self._f.write(frames.astype("<i2", copy=False).tobytes())
        self.frames += frames.shape[0]
        self._dirty = True

    def flush(self) -> None:
        """Put every appended frame on disk, then make the header claim exactly them."""
        if not self._dirty and self._claimed == self.data_bytes:
            return
        self._sync()                      # audio durable first: the header never over-claims
        end = self._f.tell()
        self._f.seek(4)
        self._f.write(struct.pack("<I", 36 + self.data_bytes))
        self._f.seek(40)
        self._f.write(struct.pack("<I", self.data_bytes))
        self._f.seek(end)
        self._sync()
        self._dirty = False
        self._claimed = self._staged = self.data_bytes

    # -- group commit: many writers, one sync of their file system (store._Flusher) ----------
    def stage(self) -> int:
        """Hand every appended frame to the OS (no sync); returns the data bytes handed over.
        The header is left as it was: it must not claim them before they are on disk."""
        self._f.flush()
        self._dirty = False
        self._staged = self.data_bytes
        return self._staged

    def commit(self, data_bytes: int) -> None:
        """After the file system was synced past a stage(): the header claims ``data_bytes``.
        One positioned write at offset 0 (the buffered stream's position is left alone); it
        reaches the disk with the next sync, or with flush() / close()."""
        if self._f.closed or data_bytes > self._staged or data_bytes <= self._claimed:
            return
        os.pwrite(self._f.fileno(), _header(self.rate, self.channels, data_bytes), 0)
        self._claimed = data_bytes

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        """Final flush and close; calling it again does nothing."""
        if self._f.closed:
            return
        try:
            self.flush()
        finally:
            self._f.close()

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Layout:
    rate: int
    channels: int
    block: int                 # bytes per frame
    data_offset: int           # first audio byte
    declared: int              # data size the header claims


def _layout(f) -> _Layout:
    """Parse a RIFF/WAVE header up to the data chunk (any chunks before it are skipped)."""
    f.seek(0)
    riff = f.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while True:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("no data chunk")
        cid, size = struct.unpack("<4sI", head)
        if cid == b"fmt ":
            tag, channels, rate, _, block, bits = struct.unpack("<HHIIHH", f.read(16))
            if tag not in (_PCM, _EXTENSIBLE) or bits != 8 * SAMPLE_BYTES:
                raise ValueError(f"only 16-bit PCM is supported (format {tag}, {bits} bits)")
            fmt = (rate, channels, block, bits)
        elif cid == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            rate, channels, block, _ = fmt
            return _Layout(rate, channels, block, pos + 8, size)
        pos += 8 + size + (size & 1)          # chunks are padded to even sizes


def repair(path: str | os.PathLike, rate: int = 8000, channels: int = 2) -> float:
    """Make a WAV cut off by a crash valid again; returns its duration in seconds.

    The sizes are recomputed from the file length (the data chunk runs to the end of the file,
    as WavWriter writes it); a trailing partial frame is cut off. A file shorter than a header
    (a crash while it was being created) becomes an empty WAV of ``rate``/``channels``. A valid
    file is left untouched (not even its mtime changes). Raises ValueError for a non-WAV file.
    """
    path = Path(path)
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size < HEADER_BYTES:
            f.seek(0)
            f.write(_header(rate, channels, 0))
            f.truncate(HEADER_BYTES)
            f.flush()
            os.fsync(f.fileno())
            return 0.0
        lay = _layout(f)
        data = max(0, size - lay.data_offset) // lay.block * lay.block
        data = min(data, _MAX_DATA // lay.block * lay.block)
        end = lay.data_offset + data
        f.seek(4)
        riff_size = struct.unpack("<I", f.read(4))[0]
        if riff_size != end - 8 or lay.declared != data or size != end:
            f.truncate(end)                 # drops a partial frame (or an odd trailing byte)
            f.seek(4)
            f.write(struct.pack("<I", end - 8))
            f.seek(lay.data_offset - 4)
            f.write(struct.pack("<I", data))
            f.flush()
            os.fsync(f.fileno())
        return data / lay.block / lay.rate


def info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(rate, channels, frames) as the header says, capped at the frames really in the file."""
    with open(path, "rb") as f:
        lay = _layout(f)
        size = os.fstat(f.fileno()).st_size
    return lay.rate, lay.channels, min(lay.declared, max(0, size - lay.data_offset)) // lay.block


def read(path: str | os.PathLike) -> tuple[int, np.ndarray]:
    """(rate, int16 array of shape (n, channels)) of the frames the header declares.

    A header that claims more than the file holds (someone else's streaming writer) is capped
    at the file; a cut-off file not yet repaired reads as what its last flush declared.
    """
    with open(path, "rb") as f:
        lay = _layout(f)
        size = os.fstat(f.fileno()).st_size
        n = min(lay.declared, max(0, size - lay.data_offset)) // lay.block
        f.seek(lay.data_offset)
        raw = f.read(n * lay.block)
    samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    return lay.rate, samples.reshape(-1, lay.channels)
