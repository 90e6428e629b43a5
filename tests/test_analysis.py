"""What-was-heard analysis (src/mppsim/phone/analysis.py): pure numpy, no SIP."""
import numpy as np
import pytest

from mppsim.phone.analysis import SILENCE_DBFS, analyse, dbfs, dominant_frequency

RATE = 8000


def tone(freq, seconds, amp=8000.0):
    t = np.arange(int(RATE * seconds)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize("freq", [300, 697, 1000, 1477, 2000, 3400])
def test_dominant_frequency_within_half_a_percent(freq):
    assert dominant_frequency(tone(freq, 0.5), RATE) == pytest.approx(freq, rel=0.005)


def test_silence_has_no_frequency_and_no_active_time():
    heard = analyse(np.zeros(RATE, dtype=np.int16), RATE)
    assert heard.freq_hz is None and heard.active_seconds == 0 and heard.seconds == 1.0


def test_active_time_counts_only_the_loud_part():
    x = np.concatenate([np.zeros(RATE, dtype=np.int16), tone(1000, 2.0), np.zeros(RATE // 2, dtype=np.int16)])
    heard = analyse(x, RATE)
    assert heard.seconds == pytest.approx(3.5)
    assert heard.active_seconds == pytest.approx(2.0, abs=0.04)
    assert heard.freq_hz == pytest.approx(1000, rel=0.005)


def test_level_of_a_full_scale_sine_is_minus_3_dbfs():
    assert dbfs(tone(1000, 1, amp=32767)) == pytest.approx(-3.01, abs=0.05)
    assert dbfs(tone(1000, 1, amp=10)) < SILENCE_DBFS
