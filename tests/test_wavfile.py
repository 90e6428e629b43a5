"""src/mppsim/recorder/wavfile.py: the crash-safe WAV writer, repair and reader, on real files."""
from __future__ import annotations

import os
import wave

import numpy as np
import pytest

from mppsim.recorder import wavfile


def ramp(start: int, n: int, channels: int = 2) -> np.ndarray:
    """Distinct, position-dependent samples: any lost or shifted frame shows."""
    i = np.arange(start, start + n, dtype=np.int64)
    cols = [((i * (7 + c)) % 65536 - 32768).astype(np.int16) for c in range(channels)]
    return np.column_stack(cols)


def wave_frames(path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getnframes(), w.getnchannels(), w.getframerate(), w.getsampwidth()


def test_header_valid_from_creation_and_after_every_flush(tmp_path):
    path = tmp_path / "a.wav"
    w = wavfile.WavWriter(path, rate=8000, channels=2)
    # the placeholder header is already a valid, empty WAV
    assert os.path.getsize(path) == wavfile.HEADER_BYTES
    assert wave_frames(path) == (0, 2, 8000, 2)
    total = 0
    for k, n in enumerate((160, 1, 333, 8000)):
        w.append(ramp(total, n))
        total += n
        w.flush()
        assert wave_frames(path) == (total, 2, 8000, 2), f"after flush {k}"
        rate, data = wavfile.read(path)
        assert rate == 8000 and np.array_equal(data, ramp(0, total))
    w.close()
    assert wave_frames(path)[0] == total
    w.close()                                       # idempotent


def test_other_rates_and_mono(tmp_path):
    path = tmp_path / "m.wav"
    with wavfile.WavWriter(path, rate=16000, channels=1) as w:
        w.append(ramp(0, 1600, channels=1))
    assert wave_frames(path) == (1600, 1, 16000, 2)
    assert wavfile.info(path) == (16000, 1, 1600)


def test_a_writer_never_opens_an_existing_file(tmp_path):
    path = tmp_path / "done.wav"
    with wavfile.WavWriter(path) as w:
        w.append(ramp(0, 800))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        wavfile.WavWriter(path)
    assert path.read_bytes() == before


def test_append_refuses_wrong_dtype_or_shape(tmp_path):
    with wavfile.WavWriter(tmp_path / "x.wav") as w:
        with pytest.raises(TypeError):
            w.append(np.zeros((10, 2), np.float32))
        with pytest.raises(ValueError):
            w.append(np.zeros((10, 3), np.int16))
        with pytest.raises(ValueError):
            w.append(np.zeros(10, np.int16))
        assert w.frames == 0


def test_repair_a_file_cut_off_mid_frame(tmp_path):
    """What a crash leaves: a header from the last flush, more audio after it, a partial frame."""
    path = tmp_path / "cut.wav"
    w = wavfile.WavWriter(path)
    w.append(ramp(0, 4000))
    w.flush()
    w.append(ramp(4000, 1000))
    w._f.flush()                                    # reached the OS, never flushed by us
    w._f.write(b"\x01\x02\x03")                     # a partial frame
    w._f.flush()
    os.close(os.dup(w._f.fileno()))                 # (the process "dies": no close/flush)
    assert wave_frames(path)[0] == 4000             # valid but stale before repair
    seconds = wavfile.repair(path)
    assert seconds == pytest.approx(5000 / 8000)
    assert wave_frames(path) == (5000, 2, 8000, 2)
    assert os.path.getsize(path) == 44 + 5000 * 4
    assert np.array_equal(wavfile.read(path)[1], ramp(0, 5000))


def test_repair_odd_trailing_byte_and_placeholder_header(tmp_path):
    path = tmp_path / "p.wav"
    frames = ramp(0, 123)
    path.write_bytes(wavfile._header(8000, 2, 0) + frames.astype("<i2").tobytes() + b"\x7f")
    assert wavfile.read(path)[1].shape == (0, 2)    # the header still says empty
    assert wavfile.repair(path) == pytest.approx(123 / 8000)
    assert np.array_equal(wavfile.read(path)[1], frames)


def test_repair_a_file_shorter_than_its_header(tmp_path):
    path = tmp_path / "short.wav"
    path.write_bytes(b"RIFF\x00\x00")
    assert wavfile.repair(path, rate=16000) == 0.0
    assert wave_frames(path) == (0, 2, 16000, 2)


def test_repair_leaves_a_valid_file_alone(tmp_path):
    path = tmp_path / "ok.wav"
    with wavfile.WavWriter(path) as w:
        w.append(ramp(0, 800))
    os.utime(path, (1_000_000, 1_000_000))
    before = path.read_bytes()
    assert wavfile.repair(path) == pytest.approx(0.1)
    assert path.read_bytes() == before
    assert path.stat().st_mtime == 1_000_000


def test_repair_refuses_what_is_not_a_wav(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"x" * 100)
    with pytest.raises(ValueError):
        wavfile.repair(path)
    assert path.read_bytes() == b"x" * 100


def test_read_caps_an_overclaiming_header(tmp_path):
    path = tmp_path / "stream.wav"
    frames = ramp(0, 50)
    path.write_bytes(wavfile._header(8000, 2, 0xFFFFFFF0 - 36)[:40] + b"\xf0\xff\xff\xff"
                     + frames.astype("<i2").tobytes())
    rate, data = wavfile.read(path)
    assert rate == 8000 and np.array_equal(data, frames)


def test_stage_hands_audio_over_but_the_header_claims_it_only_after_commit(tmp_path):
    """Group commit (store._Flusher): stage() puts the audio in the file without a sync, and
    the header keeps claiming what was synced before; commit() then claims the staged audio.
    A process killed between the two leaves a valid WAV of the old claim, and repair finds the
    staged audio after it."""
    path = tmp_path / "g.wav"
    w = wavfile.WavWriter(path, rate=8000, channels=2)
    w.append(ramp(0, 800))
    w.flush()
    w.append(ramp(800, 1600))
    staged = w.stage()
    assert staged == 2400 * 4
    assert os.path.getsize(path) == wavfile.HEADER_BYTES + staged      # the audio is in the file
    assert wave_frames(path)[0] == 800                                  # the header: the old claim
    w.commit(staged + 4)                                                # never more than staged
    assert wave_frames(path)[0] == 800
    w.commit(staged)
    assert wave_frames(path)[0] == 2400
    rate, data = wavfile.read(path)
    assert rate == 8000 and np.array_equal(data, ramp(0, 2400))
    w.append(ramp(2400, 160))
    w.stage()
    w.close()                                   # close claims everything, staged or not
    assert wave_frames(path)[0] == 2560


def test_a_kill_between_stage_and_commit_is_repaired(tmp_path):
    path = tmp_path / "k.wav"
    w = wavfile.WavWriter(path, rate=8000, channels=2)
    w.append(ramp(0, 800))
    w.flush()
    w.append(ramp(800, 400))
    w.stage()
    # what a reader sees now (the writer "killed" here: nothing more reaches the file)
    assert wave_frames(path)[0] == 800
    wavfile.repair(path, rate=8000)
    assert wave_frames(path)[0] == 1200
    assert np.array_equal(wavfile.read(path)[1], ramp(0, 1200))
