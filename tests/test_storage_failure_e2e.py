"""R-ORG-3 end to end when the recorder's store cannot keep a recording (issue 26).

mppsim's own agent records alice's calls to a `mppsim-recorder` whose store is a small tmpfs this
test mounts (root). The organisation's failure behaviour is END_CALL_WITH_ANNOUNCEMENT:
- the store is nearly full: the recorder refuses the SIPREC INVITE with 503 (storage low); the
  agent treats it as a recorder failure, plays the announcement and ends the call, and the
  event stream says why;
- the store has room for a moment only: the recording starts, fills the disk, the recorder ends
  the session with a BYE whose Reason says the storage is full; the agent fails the recording
  with that reason and ends the call; the recording is kept `truncated`.
"""
from __future__ import annotations

import os


from tests.helpers import connect, demo_org
from mppsim.app.simulator import Simulator
from mppsim.recorder.store import Store
from tests.peers.recorder_proc import start_recorder
from tests.test_recorder_storage import ballast, free_bytes, small_fs, until


def failed_reason(sim: Simulator, who: str) -> str:
    stops = [e for e in sim.network_events(who, "recorder") if e["op"] == "stop" and "failed" in e["detail"]]
    return stops[-1]["detail"]["failed"] if stops else ""


def test_r_org_3_store_full_refusal_and_bye_end_the_call_with_announcement(tmp_path):
    with small_fs(tmp_path / "fs", "1500k") as fs:
        rec = start_recorder(fs, "--min-free", "48k", "--rtp-timeout", "5")
        try:
            with Simulator(demo_org(), run_dir=tmp_path / "run") as sim:
                sim.set_org_recording({"failureBehavior": "END_CALL_WITH_ANNOUNCEMENT"})
                for loc in ("hq", "wro"):
                    sim.set_location_recording(loc, {"failureBehavior": "organisation"})
                sim.set_call_recording("alice", {"enabled": True, "record": "Always"})
                sim.orch.request("alice", "set_recorder", target=rec.ready["target"])
                sim.play("alice", tone=1000)
                sim.play("bob", tone=1500)

                # 1. nearly full: refused before a 200 could promise anything
                ballast(fs / "ballast", leave=24 * 1024)
                until(lambda: "store low" in rec.log(), 5, "the recorder sees the store low", rec.log)
                connect(sim, "bob", "alice", "1001")
                sim.wait_until(lambda: sim.recording_state("alice") == "failed", 5, "recording failed")
                why = failed_reason(sim, "alice")
                assert "503" in why and "storage low" in why, why
                kinds = [e["kind"] for e in sim.network_events("alice", "announcement")]
                assert "failed" in kinds, kinds
                sim.wait_for("alice", "ended", 5)
                sim.wait_for("bob", "ended", 5)
                assert Store(fs).list() == []

                # 2. room for a moment: the recording starts, fills the disk, the recorder hangs up
                with open(fs / "ballast", "r+b") as f:
                    f.truncate(os.path.getsize(fs / "ballast") - 56 * 1024)
                until(lambda: "store ok" in rec.log(), 5, "the recorder sees room again", rec.log)
                assert free_bytes(fs) > 48 * 1024
                connect(sim, "bob", "alice", "1001")
                sim.wait_until(lambda: sim.recording_state("alice") == "failed", 10,
                               "the recording failed when the disk filled")
                why = failed_reason(sim, "alice")
                assert why == "the recorder ended the session: Recorder storage full (503)", why
                assert "failed" in [e["kind"] for e in sim.network_events("alice", "announcement")]
                sim.wait_for("alice", "ended", 5)
                # the GUI's event log and the event stream say why
                from mppsim.ui.main_window import describe_event
                with sim._cv:
                    events = list(sim.events)
                # the call's own end names it too: the network ended it because recording failed
                ended = [e for e in events if e["event"] == "call" and e.get("agent") == "alice"
                         and e.get("state") == "ended"]
                assert ended[-1]["reason"] == "recording failed", ended[-1]
                assert ended[-1]["reason_detail"] == f"recording failed: {why}", ended[-1]
                siprec = [e for e in events if e["event"] == "siprec" and e.get("state") == "failed"]
                assert siprec and siprec[-1]["reason"] == why, siprec
                lines = [describe_event(e) for e in events]
                assert any(line and "SIPREC session" in line and why in line for line in lines), lines
                assert any(line and line.startswith("alice") and "recorder stop" in line and why in line
                           for line in lines), lines
                (row,) = until(lambda: [r for r in Store(fs).list() if r["state"] != "recording"], 10,
                               "the row closed", rec.log)
                assert (row["state"], row["ended_by"]) == ("truncated", "storage-full")
        finally:
            assert rec.stop() == 0
