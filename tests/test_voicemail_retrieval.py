"""Voicemail retrieval (issue 13, part 5): the menu's logic (pure) and, over real SIP and RTP,
*86 -> spoken menu in the owner's language -> 1 plays the message (its audio measured at the
user) -> 9 saves -> # hangs up; the message-waiting count drives the lamp/badge."""
from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from mppsim.app.simulator import Simulator
from tests.helpers import demo_org
from mppsim.phone.voicemail_menu import PROMPTS, TEXTS, Mailbox, MenuSession, prompt_file


def write_msg(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(folder / name), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, dtype=np.int16).tobytes())


def test_menu_plays_new_first_deletes_saves_and_says_goodbye(tmp_path):
    box = Mailbox(tmp_path / "1001")
    for n in ("a.wav", "b.wav", "c.wav"):
        write_msg(box.folder, n)
    box.set_state("a.wav", "saved")
    s = MenuSession(box)
    assert s.start() == [("prompt", "new_messages"), ("prompt", "menu")]
    assert box.new_count() == 2
    assert s.digit("1") == [("message", "b.wav"), ("prompt", "menu")]       # new ones first
    assert box.new_count() == 1                                              # played = not new
    assert s.digit("7") == [("prompt", "deleted"), ("prompt", "menu")]
    assert not (box.folder / "b.wav").exists()
    assert s.digit("1")[0] == ("message", "c.wav")
    assert s.digit("9") == [("prompt", "saved"), ("prompt", "menu")]
    assert [m.state for m in box.messages()] == ["saved", "saved"]
    assert s.digit("1")[0] == ("message", "a.wav")
    assert s.digit("1") == [("prompt", "no_more"), ("prompt", "menu")]
    assert s.digit("7") == [("prompt", "menu")]                              # nothing to delete
    assert s.digit("#") == [("prompt", "goodbye"), ("hangup", "")]
    assert MenuSession(Mailbox(tmp_path / "empty")).start()[0] == ("prompt", "no_new_messages")


def test_every_prompt_exists_in_every_language_with_fallbacks():
    for lang in TEXTS:
        for prompt in PROMPTS:
            assert prompt_file(prompt, lang).parent.name == lang
    assert prompt_file("menu", "en_gb").parent.name == "en_us"
    assert prompt_file("menu", "pt_pt").parent.name == "pt_br"
    with pytest.raises(ValueError, match="prompt: 'nope' not allowed"):
        prompt_file("nope", "en_us")


@pytest.fixture(scope="module")
def vsim(tmp_path_factory):
    sim = Simulator(demo_org(ring_timeout=2), run_dir=tmp_path_factory.mktemp("vmr"))
    sim.start()
    sim.play("+14155550100", tone=900)
    sim.play("dave", silence=True)
    yield sim
    sim.stop()


def played(sim, what):
    return [e for e in sim.events if e["event"] == "voicemail_played" and e["what"] == what]


def test_star86_menu_in_the_owner_language_plays_saves_and_mwi_follows(vsim):
    """Dave (Wroclaw office: pl_pl) gets a message; his lamp/badge count is 1; *86 answers with
    the Polish menu; 1 plays the message (dave hears the caller's 900 Hz); the count drops to
    0; 9 saves it (kept on disk as saved); # says goodbye and hangs up."""
    sim = vsim
    sim.dial("+14155550100", "1004")
    sim.wait_for("dave", "ringing", 3)
    sim.decline("dave")
    sim.wait_for("+14155550100", "connected", 6)
    time.sleep(8.0)                           # greeting, beep, ~1.5 s of 900 Hz
    sim.hangup("+14155550100")
    sim.wait_until(lambda: sim.messages_waiting("dave") == 1, 4, "dave's lamp")
    sim.call_voicemail("dave")
    sim.wait_for("dave", "connected", 4)
    sim.wait_until(lambda: played(sim, "new_messages"), 3, "the greeting prompt")
    assert "/pl_pl/" in played(sim, "new_messages")[-1]["file"]
    time.sleep(1.0)
    assert sim.listen("dave", 0.8)["active_seconds"] > 0.3     # the spoken prompt
    sim.dtmf("dave", "1")
    sim.wait_until(lambda: [e for e in sim.events if e["event"] == "voicemail_played" and e["kind"] == "message"],
                   4, "the message plays")
    deadline = time.monotonic() + 3
    while (sim.listen("dave", 0.4) or {}).get("freq_hz") != pytest.approx(900, rel=0.02):
        assert time.monotonic() < deadline, "dave does not hear the message"
        time.sleep(0.1)
    sim.wait_until(lambda: sim.messages_waiting("dave") == 0, 3, "lamp off once heard")
    sim.dtmf("dave", "9")
    sim.wait_until(lambda: played(sim, "saved"), 4, "'message saved'")
    box = Mailbox(Path(sim.run_dir) / "voicemail" / "1004")
    assert [m.state for m in box.messages()] == ["saved"]
    sim.dtmf("dave", "#")
    sim.wait_until(lambda: played(sim, "goodbye"), 4, "goodbye")
    sim.wait_for("dave", "ended", 6)            # the service hangs up after goodbye
    assert sim.recordings("dave") == []         # a mailbox call is not recorded


def test_mpp_lamp_and_messages_key_webex_badge_and_voicemail_tab(qtbot, vsim):
    """After a message for alice: the MPP's lamp is lit and the Webex App's badge says 1; the
    Messages key (MPP) and the voicemail tab (Webex App) call the mailbox."""
    import os
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton
    from mppsim.ui.mpp_phone import MppPhone
    from mppsim.ui.webex_app import WebexApp
    sim = vsim
    w = MppPhone(sim, "alice")
    app = WebexApp(sim, "alice")
    for widget in (w, app):
        qtbot.addWidget(widget)
        widget.show()
    w.refresh()
    assert not w.message_lamp() and app.voicemail_count() == 0
    sim.dial("+14155550100", "1001")
    sim.wait_for("alice", "ringing", 3)
    sim.decline("alice")
    sim.wait_for("+14155550100", "connected", 6)
    time.sleep(7.0)
    sim.hangup("+14155550100")
    sim.wait_until(lambda: sim.messages_waiting("alice") == 1, 4, "alice's message waiting")
    qtbot.waitUntil(lambda: (w.refresh(), app.refresh(), w.message_lamp() and app.voicemail_count() == 1)[2],
                    timeout=3000)
    out = os.environ.get("MPPSIM_SCREENSHOTS")
    if out:
        w.setScale(1.0)
        w.grab().save(str(Path(out) / "mpp-8865-message-waiting.png"))
        app.grab().save(str(Path(out) / "webex-voicemail-badge.png"))
    qtbot.mouseClick(w.findChild(QPushButton, "mpp_alice_messages"), Qt.LeftButton)
    sim.wait_for("alice", "connected", 4)
    assert sim.current_call("alice")["remote"]["user"] in ("*86", "8000")
    sim.dtmf("alice", "#")
    sim.wait_for("alice", "ended", 8)
    qtbot.mouseClick(app.findChild(QPushButton, "webex_alice_voicemail"), Qt.LeftButton)
    sim.wait_for("alice", "connected", 4)
    sim.hangup("alice")
