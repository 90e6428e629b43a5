"""Every SIP message an agent sends or receives reaches its `<name>.pjsip.log` within a second
while it runs and by the time it ends (issue 21): pjlib writes the file through C stdio and
used to leave up to 4 kB in the buffer, cut at a 4096-byte boundary by the agent's os._exit."""
from __future__ import annotations

import time

from mppsim.app.simulator import Simulator
from tests.helpers import connect, demo_org


def test_a_call_s_last_messages_reach_the_log_while_running_and_after_exit(tmp_path):
    sim = Simulator(demo_org(voicemail=False), run_dir=tmp_path / "run").start()
    try:
        connect(sim, "alice", "bob", "1002")
        sim.hangup("alice")
        sim.wait_for("bob", "ended", 3)
        time.sleep(1.0)
        log = sim.run_dir / "logs" / "bob.pjsip.log"
        text = log.read_text(errors="replace")
        # bob's answer to the BYE is the last message of the call
        assert "SIP/2.0 200 OK" in text[text.rindex("BYE sip:"):], "the BYE's 200 not in the log yet"
    finally:
        sim.stop()
    for name in ("alice", "bob"):
        data = (sim.run_dir / "logs" / f"{name}.pjsip.log").read_bytes()
        assert data.endswith(b"\n"), f"{name}.pjsip.log is cut ({len(data)} bytes)"
        assert data.count(b"BYE sip:") >= 1
