"""Audio the network plays to the parties of a recorded call: spoken announcements and tones.

Pure numpy + stdlib `wave` (no pjsua2, no Qt), so the agents, the UI and the tests can all use it.

Spoken announcements (R-CMP-1..5, R-USR-4, R-USR-5, R-ORG-3) are small committed WAV files,
8000 Hz mono 16-bit PCM (the agents' conference bridge runs at 8 kHz), made with espeak-ng and
sox by `scripts/make-announcements` from the table `TEXTS` below:

    assets/announcements/<language>/<kind>.wav

`announcement_file(kind, language)` finds the file for a `mppsim.rules.policy.Play` action,
falling back to a sibling variant of the language (en_gb -> en_us, pt_pt -> pt_br, ...) and
finally to en_us.

Tones (R-USR-5 beep, R-USR-6 repeat/reminder tone) are synthesised here: `beep()`,
`repeat_tone()`, `tone(kind)`; `tone_wav(kind, directory)` writes one to a WAV file (once per
kind and directory) for a pjsua2 AudioMediaPlayer. Both are single-frequency bursts at
`TONE_FREQ_HZ` (1400 Hz, the recorder warning tone frequency), so a test can find them in a
captured stream by frequency and tell them apart by length:

- beep (pause/resume notification, R-USR-5): one 250 ms burst;
- repeat (reminder every N s while recording, R-USR-6): one 500 ms burst, the classic recorder
  warning tone ("a half-second burst of 1400 Hz", FS-1037C / ANSI T1.523, repeated by the
  network every `repeat.interval` seconds; BroadWorks' own tone is not published, this is the
  standard it follows).

Each burst has 5 ms raised-cosine ramps (no clicks) and peaks at -10 dBFS.
"""
from __future__ import annotations

import os
import wave
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # imported where used: an idle agent does not load numpy
    import numpy as np

__all__ = [
    "ALL_KINDS", "ANNOUNCEMENT_DIR", "DEFAULT_LANGUAGE", "KINDS", "LANGUAGES", "REQUIRED_LANGUAGES",
    "SAMPLE_RATE", "TEXTS", "TONE_KINDS", "TONE_FREQ_HZ", "TONE_LEVEL_DBFS", "TONE_RAMP_S",
    "TONE_SPEC", "VOICES",
    "announcement_file", "announcement_text", "audio_file", "beep", "duration", "read_wav",
    "repeat_tone", "resolve_language", "tone", "tone_wav", "write_wav",
]

ROOT = Path(__file__).resolve().parents[1]
ANNOUNCEMENT_DIR = ROOT / "assets" / "announcements"
SAMPLE_RATE = 8000                     # Hz, the agents' conference bridge clock rate

# Spoken kinds (mppsim.rules.policy.Play.kind with audio="announcement") and synthesised ones
KINDS = ("compliance", "start", "stop", "paused", "resumed", "failed")
TONE_KINDS = ("beep", "repeat")
ALL_KINDS = KINDS + TONE_KINDS

DEFAULT_LANGUAGE = "en_us"
REQUIRED_LANGUAGES = ("en_us", "pl_pl", "pt_br", "bg_bg")
# Same order as mppsim.app.org.LANGUAGES (not imported: this module stays free of the app package)
LANGUAGES = ("en_us", "en_gb", "pl_pl", "pt_br", "pt_pt", "bg_bg", "de_de", "fr_fr", "es_es")

# espeak-ng voice per language (scripts/make-announcements)
VOICES = {
    "en_us": "en-us", "en_gb": "en-gb", "pl_pl": "pl", "pt_br": "pt-br", "pt_pt": "pt",
    "bg_bg": "bg", "de_de": "de", "fr_fr": "fr-fr", "es_es": "es",
}

# What each announcement says. compliance: R-CMP-1; start/stop: R-USR-4; paused/resumed: R-USR-5;
# failed: R-ORG-3 (PROCEED_CALL_WITH_ANNOUNCEMENT / END_CALL_WITH_ANNOUNCEMENT).
_ENGLISH = {
    "compliance": "This call may be recorded.",
    "start": "This call is being recorded.",
    "stop": "Recording has stopped.",
    "paused": "Recording paused.",
    "resumed": "Recording resumed.",
    "failed": "Call recording is not available.",
}
TEXTS: dict[str, dict[str, str]] = {
    "en_us": dict(_ENGLISH),
    "en_gb": dict(_ENGLISH),           # the same words; espeak-ng speaks them with a British voice
    "pl_pl": {
        "compliance": "Ta rozmowa może być nagrywana.",
        "start": "Ta rozmowa jest nagrywana.",
        "stop": "Nagrywanie zostało zatrzymane.",
        "paused": "Nagrywanie wstrzymane.",
        "resumed": "Nagrywanie wznowione.",
        "failed": "Nagrywanie rozmowy jest niedostępne.",
    },
    "pt_br": {
        "compliance": "Esta chamada pode ser gravada.",
        "start": "Esta chamada está sendo gravada.",
        "stop": "A gravação foi interrompida.",
        "paused": "Gravação pausada.",
        "resumed": "Gravação retomada.",
        "failed": "A gravação de chamadas não está disponível.",
    },
    "pt_pt": {
        "compliance": "Esta chamada pode ser gravada.",
        "start": "Esta chamada está a ser gravada.",
        "stop": "A gravação foi interrompida.",
        "paused": "Gravação em pausa.",
        "resumed": "Gravação retomada.",
        "failed": "A gravação de chamadas não está disponível.",
    },
    "bg_bg": {
        "compliance": "Този разговор може да бъде записан.",
        "start": "Този разговор се записва.",
        "stop": "Записът е спрян.",
        "paused": "Записът е на пауза.",
        "resumed": "Записът е възобновен.",
        "failed": "Записът на разговора не е наличен.",
    },
    "de_de": {
        "compliance": "Dieser Anruf kann aufgezeichnet werden.",
        "start": "Dieser Anruf wird aufgezeichnet.",
        "stop": "Die Aufzeichnung wurde beendet.",
        "paused": "Aufzeichnung angehalten.",
        "resumed": "Aufzeichnung fortgesetzt.",
        "failed": "Die Anrufaufzeichnung ist nicht verfügbar.",
    },
    "fr_fr": {
        "compliance": "Cet appel peut être enregistré.",
        "start": "Cet appel est en cours d'enregistrement.",
        "stop": "L'enregistrement est arrêté.",
        "paused": "Enregistrement en pause.",
        "resumed": "Enregistrement repris.",
        "failed": "L'enregistrement des appels n'est pas disponible.",
    },
    "es_es": {
        "compliance": "Esta llamada puede ser grabada.",
        "start": "Esta llamada está siendo grabada.",
        "stop": "La grabación se ha detenido.",
        "paused": "Grabación en pausa.",
        "resumed": "Grabación reanudada.",
        "failed": "La grabación de llamadas no está disponible.",
    },
}

# Preferred sibling when a language variant has no files of its own
_FALLBACK = {"en_gb": "en_us", "pt_pt": "pt_br", "pt_br": "pt_pt"}

# ----- tones ---------------------------------------------------------------------------------
TONE_FREQ_HZ = 1400.0
TONE_LEVEL_DBFS = -10.0                # peak level of every tone
TONE_RAMP_S = 0.005                    # raised-cosine attack and release
# kind -> cadence: a list of (on seconds, off seconds) bursts; trailing off time is not written
TONE_SPEC: dict[str, tuple[tuple[float, float], ...]] = {
    "beep": ((0.250, 0.0),),           # R-USR-5 pause/resume notification
    "repeat": ((0.500, 0.0),),         # R-USR-6 reminder: recorder warning tone, 1/2 s of 1400 Hz
}


def _check_kind(kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        hint = ""
        if kind in TONE_KINDS:
            hint = " (a tone: use tone_wav())"
        elif kind in KINDS:
            hint = " (spoken: use announcement_file())"
        raise ValueError(f"unknown announcement kind {kind!r}{hint}; allowed: {', '.join(allowed)}")


def _normalise(language: str) -> str:
    return (language or DEFAULT_LANGUAGE).strip().lower().replace("-", "_")


def _candidates(language: str) -> list[str]:
    """Languages to try, best first: the language, its preferred sibling, any sibling, en_us."""
    lang = _normalise(language)
    out = [lang]
    if lang in _FALLBACK:
        out.append(_FALLBACK[lang])
    prefix = lang.split("_")[0]
    out += [x for x in LANGUAGES if x.split("_")[0] == prefix]
    out.append(DEFAULT_LANGUAGE)
    return list(dict.fromkeys(out))


def resolve_language(kind: str, language: str, directory: Path | None = None) -> str:
    """The language whose file `announcement_file` would return."""
    return announcement_file(kind, language, directory).parent.name


def announcement_file(kind: str, language: str, directory: Path | None = None) -> Path:
    """The WAV of a spoken announcement, in `language` or the nearest one that exists.

    Falls back en_gb -> en_us, pt_pt -> pt_br, then any variant of the same language (es_mx ->
    es_es), finally en_us. ValueError for a kind that is not spoken; FileNotFoundError if not even
    the en_us file exists (run scripts/make-announcements)."""
    _check_kind(kind, KINDS)
    base = Path(directory) if directory is not None else ANNOUNCEMENT_DIR
    for lang in _candidates(language):
        path = base / lang / f"{kind}.wav"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no announcement {kind!r} for {language!r} (nor en_us) in {base}; "
                            "run scripts/make-announcements")


def announcement_text(kind: str, language: str) -> str:
    """What the announcement says, with the same language fallback as the files."""
    _check_kind(kind, KINDS)
    for lang in _candidates(language):
        if lang in TEXTS:
            return TEXTS[lang][kind]
    return TEXTS[DEFAULT_LANGUAGE][kind]


def audio_file(kind: str, language: str, audio: str = "announcement",
               directory: Path | str | None = None) -> Path:
    """The file to play for a `mppsim.rules.policy.Play` (kind, language, audio): a tone for
    audio == "tone" or a tone kind (written into `directory`, default: the temp dir), else the
    spoken announcement."""
    if audio == "tone" or kind in TONE_KINDS:
        return tone_wav(kind, directory if directory is not None else _default_tone_dir())
    return announcement_file(kind, language)


# ----- tone synthesis ------------------------------------------------------------------------
def _burst(freq: float, seconds: float, level_dbfs: float, rate: int) -> np.ndarray:
    import numpy as np
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    x = np.sin(2 * np.pi * freq * t)
    ramp = min(int(round(TONE_RAMP_S * rate)), n // 2)
    if ramp:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)   # raised cosine 0 -> 1
        x[:ramp] *= r
        x[n - ramp:] *= r[::-1]
    return x * (10 ** (level_dbfs / 20))


def tone(kind: str, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A tone kind ("beep" | "repeat") as int16 samples at `rate` Hz."""
    import numpy as np
    _check_kind(kind, TONE_KINDS)
    parts = []
    cadence = TONE_SPEC[kind]
    for i, (on, off) in enumerate(cadence):
        parts.append(_burst(TONE_FREQ_HZ, on, TONE_LEVEL_DBFS, rate))
        if off and i < len(cadence) - 1:
            parts.append(np.zeros(int(round(off * rate))))
    x = np.concatenate(parts)
    return np.round(x * 32767).astype(np.int16)


def beep(rate: int = SAMPLE_RATE) -> np.ndarray:
    """R-USR-5 pause/resume notification: one 250 ms 1400 Hz beep, int16."""
    return tone("beep", rate)


def repeat_tone(rate: int = SAMPLE_RATE) -> np.ndarray:
    """R-USR-6 reminder tone: one 500 ms 1400 Hz burst (recorder warning tone), int16."""
    return tone("repeat", rate)


def _default_tone_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    import tempfile   # here, not at the top: an idle agent stays small
    return Path(tempfile.gettempdir()) / f"mppsim-tones-{uid}"


_written: dict[tuple[str, str], Path] = {}


def tone_wav(kind: str, directory: Path | str) -> Path:
    """Write the tone to `<directory>/tone-<kind>.wav` (8 kHz mono 16-bit) once and return it.

    Cached per kind and directory; a file already there with the right content is reused, so
    several agent processes can share a directory (writes go through a temp file + rename)."""
    import numpy as np
    _check_kind(kind, TONE_KINDS)
    directory = Path(directory)
    key = (kind, str(directory.resolve()))
    path = _written.get(key)
    if path is not None and path.is_file():
        return path
    samples = tone(kind)
    path = directory / f"tone-{kind}.wav"
    try:
        same = path.is_file() and np.array_equal(read_wav(path)[0], samples)
    except (wave.Error, EOFError, ValueError):
        same = False
    if not same:
        write_wav(path, samples)
    _written[key] = path
    return path


# ----- WAV helpers ---------------------------------------------------------------------------
def write_wav(path: Path | str, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write mono int16 samples atomically (temp file in the same directory, then rename)."""
    import numpy as np
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a mono 16-bit PCM WAV."""
    import numpy as np
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: not mono 16-bit PCM")
        data = w.readframes(w.getnframes())
        return np.frombuffer(data, dtype="<i2").astype(np.int16), w.getframerate()


def duration(path: Path | str) -> float:
    """Length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())
