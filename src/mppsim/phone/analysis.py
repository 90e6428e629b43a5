"""What a party heard, computed from samples (pure numpy, no pjsua2)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SILENCE_DBFS = -50.0  # quieter than this counts as silence (a PCMU-coded tone is ~-9 dBFS)


@dataclass(frozen=True)
class Heard:
    seconds: float            # length of the audio analysed
    active_seconds: float     # of which louder than SILENCE_DBFS (in 20 ms blocks)
    rms_dbfs: float           # level of the active part (-inf when all silent)
    freq_hz: float | None     # dominant frequency of the active part, None when silent

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rms_dbfs"] = None if not np.isfinite(self.rms_dbfs) else round(self.rms_dbfs, 1)
        d["seconds"] = round(self.seconds, 3)
        d["active_seconds"] = round(self.active_seconds, 3)
        if self.freq_hz is not None:
            d["freq_hz"] = round(self.freq_hz, 1)
        return d


def dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")


def dominant_frequency(samples: np.ndarray, rate: int) -> float | None:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation."""
    if samples.size < 64:
        return None
    x = samples.astype(np.float64)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    k = int(np.argmax(spectrum[1:])) + 1
    if spectrum[k] <= 0:
        return None
    offset = 0.0
    if 1 <= k < spectrum.size - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        if denom != 0:
            offset = 0.5 * (a - c) / denom
    return (k + offset) * rate / x.size


def active_blocks(samples: np.ndarray, rate: int, block_ms: int = 20) -> np.ndarray:
    """Boolean per block: louder than SILENCE_DBFS."""
    n = rate * block_ms // 1000
    blocks = samples[: samples.size // n * n].reshape(-1, n).astype(np.float64)
    if blocks.size == 0:
        return np.zeros(0, dtype=bool)
    rms = np.sqrt(np.mean(np.square(blocks), axis=1))
    threshold = 32768.0 * 10 ** (SILENCE_DBFS / 20)
    return rms > threshold


def analyse(samples: np.ndarray, rate: int) -> Heard:
    n = rate // 50
    active = active_blocks(samples, rate)
    if active.size == 0 or not active.any():
        return Heard(samples.size / rate, 0.0, float("-inf"), None)
    loud = samples[: active.size * n].reshape(-1, n)[active].ravel()
    # Analyse at most 4 s of the active audio: enough resolution, bounded cost.
    loud_part = loud[: rate * 4]
    return Heard(
        seconds=samples.size / rate,
        active_seconds=float(active.sum()) * n / rate,
        rms_dbfs=dbfs(loud),
        freq_hz=dominant_frequency(loud_part, rate),
    )


def first_loud_frame(samples: np.ndarray, rate: int, threshold_dbfs: float, block_ms: int = 20) -> float | None:
    """Seconds from the start of `samples` to the first block louder than the threshold."""
    n = rate * block_ms // 1000
    blocks = samples[: samples.size // n * n].reshape(-1, n).astype(np.float64)
    if blocks.size == 0:
        return None
    rms = np.sqrt(np.mean(np.square(blocks), axis=1))
    loud = np.nonzero(rms > 32768.0 * 10 ** (threshold_dbfs / 20))[0]
    return None if loud.size == 0 else float(loud[0]) * n / rate
