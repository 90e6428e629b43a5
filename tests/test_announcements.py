"""Spoken announcements (committed WAVs) and synthesised tones (src/mppsim/phone/announcements.py).

R-CMP-1..5 compliance, R-USR-4 start/stop, R-USR-5 paused/resumed + beep, R-USR-6 repeat tone,
R-ORG-3 failed. Pure file/numpy checks: no SIP, no Qt.
"""
from __future__ import annotations

import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from mppsim.app.org import LANGUAGES as ORG_LANGUAGES
from mppsim.phone import announcements as ann
from mppsim.rules.policy import Play

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "mppsim" / "assets" / "announcements"
DBFS = lambda x: 20 * np.log10(max(float(x), 1e-12) / 32768)  # noqa: E731


def _samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) == \
            (1, 2, 8000, "NONE"), f"{path}: not 8 kHz mono 16-bit PCM"
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _dominant_hz(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x)), n=8 * len(x)))
    return float(np.fft.rfftfreq(8 * len(x), 1 / rate)[np.argmax(spec)])


# ----- spoken announcements ------------------------------------------------------------------
def test_tables_cover_every_org_language_and_kind():
    assert ann.KINDS == ("compliance", "start", "stop", "paused", "resumed", "failed")
    assert ann.TONE_KINDS == ("beep", "repeat")
    assert set(ann.ALL_KINDS) == {"compliance", "start", "stop", "paused", "resumed", "beep",
                                  "repeat", "failed"}   # every mppsim.rules.policy.Play kind
    assert ann.LANGUAGES == ORG_LANGUAGES
    assert set(ann.REQUIRED_LANGUAGES) <= set(ann.TEXTS)
    for lang in ORG_LANGUAGES:
        assert set(ann.TEXTS[lang]) == set(ann.KINDS), lang
        assert lang in ann.VOICES


@pytest.mark.parametrize("language", ORG_LANGUAGES)
@pytest.mark.parametrize("kind", ann.KINDS)
def test_announcement_file_is_short_loud_8k_mono_pcm(kind, language):
    path = ASSETS / language / f"{kind}.wav"
    assert path.is_file(), f"missing {path}: run scripts/make-announcements"
    assert ann.announcement_file(kind, language) == path       # no fallback needed
    x = _samples(path)
    assert 0.5 <= ann.duration(path) <= 5.0
    assert len(x) / 8000 == pytest.approx(ann.duration(path))
    peak = np.abs(x.astype(np.int32)).max()
    assert -4.0 <= DBFS(peak) <= -2.0                            # peak-normalised to ~-3 dBFS
    assert DBFS(np.sqrt(np.mean(x.astype(float) ** 2))) > -35    # not silent
    loud = np.flatnonzero(np.abs(x) > 0.01 * 32768)
    assert loud[0] < 0.15 * 8000 and len(x) - loud[-1] < 0.15 * 8000   # silence trimmed


def test_announcements_folder_is_small_and_documented():
    wavs = list(ASSETS.rglob("*.wav"))
    assert len(wavs) >= len(ann.KINDS) * len(ann.REQUIRED_LANGUAGES)
    assert sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file()) < 2_000_000
    readme = (ASSETS / "README.md").read_text(encoding="utf-8")
    assert "scripts/make-announcements" in readme
    for lang, texts in ann.TEXTS.items():
        for text in texts.values():
            assert text in readme, (lang, text)
    script = ROOT / "scripts" / "make-announcements"
    assert script.is_file() and os.access(script, os.X_OK)


def _partial_assets(tmp_path: Path, *languages: str) -> Path:
    for lang in languages:
        (tmp_path / lang).mkdir()
        shutil.copy(ASSETS / lang / "start.wav", tmp_path / lang / "start.wav")
    return tmp_path


def test_fallbacks(tmp_path):
    d = _partial_assets(tmp_path, "en_us", "pt_br", "es_es")
    f = lambda lang: ann.announcement_file("start", lang, d).parent.name  # noqa: E731
    assert f("en_gb") == "en_us"
    assert f("pt_pt") == "pt_br"
    assert f("es_mx") == "es_es"            # any variant of the same language
    assert f("pl_pl") == "en_us"            # finally en_us
    assert f("xx_yy") == "en_us"
    assert f("") == "en_us"
    assert f("PT-BR") == "pt_br"            # case and hyphen tolerated
    assert ann.resolve_language("start", "en_gb", d) == "en_us"
    (tmp_path / "only_pt_pt").mkdir()
    d2 = _partial_assets(tmp_path / "only_pt_pt", "pt_pt")
    assert ann.announcement_file("start", "pt_br", d2).parent.name == "pt_pt"   # and back
    # the committed assets: a variant without files of its own still gets its language
    assert ann.announcement_file("compliance", "fr_ca").parent.name == "fr_fr"
    assert ann.announcement_file("compliance", "de").parent.name == "de_de"


def test_missing_everything_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make-announcements"):
        ann.announcement_file("start", "en_us", tmp_path)


def test_unknown_kind_names_the_allowed_kinds():
    with pytest.raises(ValueError) as e:
        ann.announcement_file("hello", "en_us")
    for kind in ann.KINDS:
        assert kind in str(e.value)
    with pytest.raises(ValueError, match="tone_wav"):
        ann.announcement_file("beep", "en_us")
    with pytest.raises(ValueError, match="beep, repeat"):
        ann.tone("compliance")


def test_texts_with_fallback():
    assert ann.announcement_text("compliance", "en_gb") == "This call may be recorded."
    assert ann.announcement_text("start", "pl_pl") == "Ta rozmowa jest nagrywana."
    assert ann.announcement_text("paused", "pt_br") == "Gravação pausada."
    assert ann.announcement_text("stop", "bg_bg") == "Записът е спрян."
    assert ann.announcement_text("failed", "xx_yy") == "Call recording is not available."


# ----- tones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,fn,seconds",
                         [("beep", ann.beep, 0.25), ("repeat", ann.repeat_tone, 0.5)])
def test_tone(kind, fn, seconds):
    x = fn()
    assert x.dtype == np.int16 and x.ndim == 1
    assert np.array_equal(x, ann.tone(kind))
    assert len(x) == round(seconds * 8000)
    assert abs(_dominant_hz(x) - ann.TONE_FREQ_HZ) < 5
    peak = np.abs(x.astype(np.int32)).max()
    assert -11 <= DBFS(peak) <= -9                     # about -10 dBFS, nothing above -9
    # raised-cosine ramps: starts and ends near zero, no step larger than a sine's own slope
    assert abs(int(x[0])) < 50 and abs(int(x[-1])) < 200
    max_step = 2 * np.pi * ann.TONE_FREQ_HZ / 8000 * peak
    assert np.abs(np.diff(x.astype(np.int32))).max() <= max_step * 1.05
    ramp = int(ann.TONE_RAMP_S * 8000)
    assert np.abs(x[:ramp // 2]).max() < 0.6 * peak    # still rising halfway through the ramp


def test_tones_are_told_apart_by_length():
    assert len(ann.repeat_tone()) >= 1.5 * len(ann.beep())
    assert ann.tone("beep", rate=16000).size == 4000


def test_tone_wav_is_written_once_and_cached(tmp_path):
    p = ann.tone_wav("repeat", tmp_path)
    assert p.parent == tmp_path and p.is_file()
    assert np.array_equal(_samples(p), ann.repeat_tone())
    assert ann.duration(p) == pytest.approx(0.5)
    mtime = p.stat().st_mtime_ns
    assert ann.tone_wav("repeat", tmp_path) == p and p.stat().st_mtime_ns == mtime
    assert ann.tone_wav("beep", tmp_path) != p
    # another process's (or a stale) file: reused if right, replaced if not
    other = tmp_path / "other"
    other.mkdir()
    (other / "tone-beep.wav").write_bytes(b"junk")
    q = ann.tone_wav("beep", other)
    assert np.array_equal(_samples(q), ann.beep())
    assert not list(other.glob(".*"))                   # no temp files left behind


def test_audio_file_for_policy_play_actions(tmp_path):
    for play in (Play("beep", ("local",), "pl_pl", "tone"),
                 Play("repeat", ("remote",), "en_us", "tone")):
        p = ann.audio_file(play.kind, play.language, play.audio, tmp_path)
        assert p == tmp_path / f"tone-{play.kind}.wav"
    play = Play("paused", ("local", "remote"), "bg_bg")
    assert ann.audio_file(play.kind, play.language, play.audio) == ASSETS / "bg_bg" / "paused.wav"
