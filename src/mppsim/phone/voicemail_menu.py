"""Voicemail retrieval: the mailbox store and the spoken DTMF menu (issue 13, part 5). Pure
Python (files and a state machine); phone/voicemail.py plays what it says over pjsua2.

A user reaches their mailbox with the MPP's Messages key, the Webex App's voicemail tab, or by
dialling the voicemail number or `*86` from their own line. The menu, spoken in the mailbox
owner's location language (espeak-ng assets, assets/voicemail/<language>/<prompt>.wav):

    greeting: "You have new messages." / "You have no new messages." then the menu
    1  play the next message (new ones first, oldest first; then saved ones)
    7  delete the message just played          9  save it
    #  goodbye (hang up)

A message played is no longer new. The message-waiting indicator (MPP lamp, Webex App badge)
is on while the mailbox has new messages.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT_DIR = ROOT / "assets" / "voicemail"
PROMPTS = ("new_messages", "no_new_messages", "menu", "deleted", "saved", "no_more", "goodbye")
RETRIEVAL_CODE = "*86"
DEFAULT_LANGUAGE = "en_us"
FALLBACK = {"en_gb": "en_us", "pt_pt": "pt_br"}

# Prompt texts per language; scripts/make-voicemail-prompts speaks them with espeak-ng.
TEXTS: dict[str, dict[str, str]] = {
    "en_us": {
        "new_messages": "You have new messages.",
        "no_new_messages": "You have no new messages.",
        "menu": "Press 1 to play the next message, 7 to delete it, 9 to save it, or pound to hang up.",
        "deleted": "Message deleted.",
        "saved": "Message saved.",
        "no_more": "No more messages.",
        "goodbye": "Goodbye.",
    },
    "pl_pl": {
        "new_messages": "Masz nowe wiadomości.",
        "no_new_messages": "Nie masz nowych wiadomości.",
        "menu": "Naciśnij 1, aby odsłuchać następną wiadomość, 7, aby ją usunąć, 9, aby ją zapisać, lub krzyżyk, aby zakończyć.",
        "deleted": "Wiadomość usunięta.",
        "saved": "Wiadomość zapisana.",
        "no_more": "Nie ma więcej wiadomości.",
        "goodbye": "Do widzenia.",
    },
    "de_de": {
        "new_messages": "Sie haben neue Nachrichten.",
        "no_new_messages": "Sie haben keine neuen Nachrichten.",
        "menu": "Drücken Sie 1 für die nächste Nachricht, 7 zum Löschen, 9 zum Speichern, oder Raute zum Beenden.",
        "deleted": "Nachricht gelöscht.",
        "saved": "Nachricht gespeichert.",
        "no_more": "Keine weiteren Nachrichten.",
        "goodbye": "Auf Wiederhören.",
    },
    "fr_fr": {
        "new_messages": "Vous avez de nouveaux messages.",
        "no_new_messages": "Vous n'avez pas de nouveau message.",
        "menu": "Appuyez sur 1 pour écouter le message suivant, 7 pour le supprimer, 9 pour le sauvegarder, ou dièse pour raccrocher.",
        "deleted": "Message supprimé.",
        "saved": "Message sauvegardé.",
        "no_more": "Il n'y a plus de messages.",
        "goodbye": "Au revoir.",
    },
    "es_es": {
        "new_messages": "Tiene mensajes nuevos.",
        "no_new_messages": "No tiene mensajes nuevos.",
        "menu": "Pulse 1 para escuchar el siguiente mensaje, 7 para borrarlo, 9 para guardarlo, o almohadilla para colgar.",
        "deleted": "Mensaje borrado.",
        "saved": "Mensaje guardado.",
        "no_more": "No hay más mensajes.",
        "goodbye": "Adiós.",
    },
    "pt_br": {
        "new_messages": "Você tem novas mensagens.",
        "no_new_messages": "Você não tem novas mensagens.",
        "menu": "Pressione 1 para ouvir a próxima mensagem, 7 para apagá-la, 9 para salvá-la, ou cerquilha para desligar.",
        "deleted": "Mensagem apagada.",
        "saved": "Mensagem salva.",
        "no_more": "Não há mais mensagens.",
        "goodbye": "Até logo.",
    },
    "bg_bg": {
        "new_messages": "Имате нови съобщения.",
        "no_new_messages": "Нямате нови съобщения.",
        "menu": "Натиснете 1 за следващото съобщение, 7 за изтриване, 9 за запазване, или диез за край.",
        "deleted": "Съобщението е изтрито.",
        "saved": "Съобщението е запазено.",
        "no_more": "Няма повече съобщения.",
        "goodbye": "Довиждане.",
    },
}


def prompt_file(prompt: str, language: str | None) -> Path:
    """The WAV of a prompt in `language`, falling back (en_gb -> en_us, pt_pt -> pt_br, en_us)."""
    return prompt_path(PROMPT_DIR, prompt, language, allowed=PROMPTS, fallback=FALLBACK,
                       kind="voicemail", script="scripts/make-voicemail-prompts")


def prompt_path(directory: Path, prompt: str, language: str | None, *, allowed, fallback: dict[str, str],
                kind: str, script: str) -> Path:
    """`directory/<language>/<prompt>.wav`, else the fallback language's, else en_us's. A prompt
    not in `allowed` is refused by name; a missing file names the script that makes it. Shared
    by the voicemail menu and the contact-centre features (feature_prompts)."""
    if prompt not in allowed:
        raise ValueError(f"prompt: {prompt!r} not allowed; allowed: {', '.join(allowed)}")
    lang = (language or DEFAULT_LANGUAGE).lower()
    for candidate in (lang, fallback.get(lang, ""), DEFAULT_LANGUAGE):
        path = directory / candidate / f"{prompt}.wav"
        if candidate and path.is_file():
            return path
    raise FileNotFoundError(f"no {kind} prompt {prompt} for {language} (run {script})")


@dataclass
class Message:
    file: str          # name inside the mailbox folder
    state: str         # new | heard | saved


class Mailbox:
    """One mailbox folder: <run_dir>/voicemail/<extension>/*.wav plus state.json (name -> state).
    A message file without a state entry is new."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _states(self) -> dict[str, str]:
        try:
            return json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def _write(self, states: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.folder)
        with os.fdopen(fd, "w") as f:
            json.dump(states, f)
        os.replace(tmp, self.folder / "state.json")

    def messages(self) -> list[Message]:
        """New messages first, then heard and saved ones; oldest first within each."""
        states = self._states()
        files = sorted(p.name for p in self.folder.glob("*.wav")) if self.folder.is_dir() else []
        msgs = [Message(f, states.get(f, "new")) for f in files]
        order = {"new": 0, "heard": 1, "saved": 1}
        return sorted(msgs, key=lambda m: order.get(m.state, 1))

    def new_count(self) -> int:
        return sum(m.state == "new" for m in self.messages())

    def set_state(self, name: str, state: str) -> None:
        states = self._states()
        states[name] = state
        self._write(states)

    def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
        states = self._states()
        states.pop(name, None)
        self._write(states)


@dataclass
class MenuSession:
    """The retrieval menu's state machine: feed it digits, play what it returns.

    Actions: ("prompt", name) | ("message", file name) | ("hangup", "")."""
    mailbox: Mailbox
    queue: list[str] = field(default_factory=list)     # message files still to play
    current: str | None = None                         # the message just played

    def start(self) -> list[tuple[str, str]]:
        self.queue = [m.file for m in self.mailbox.messages()]
        first = "new_messages" if self.mailbox.new_count() else "no_new_messages"
        return [("prompt", first), ("prompt", "menu")]

    def digit(self, d: str) -> list[tuple[str, str]]:
        if d == "1":
            if not self.queue:
                self.current = None
                return [("prompt", "no_more"), ("prompt", "menu")]
            self.current = self.queue.pop(0)
            state = next((m.state for m in self.mailbox.messages() if m.file == self.current), "new")
            if state == "new":
                self.mailbox.set_state(self.current, "heard")
            return [("message", self.current), ("prompt", "menu")]
        if d in ("7", "9") and self.current is not None:
            if d == "7":
                self.mailbox.delete(self.current)
                done = "deleted"
            else:
                self.mailbox.set_state(self.current, "saved")
                done = "saved"
            self.current = None
            return [("prompt", done), ("prompt", "menu")]
        if d == "#":
            return [("prompt", "goodbye"), ("hangup", "")]
        return [("prompt", "menu")]
