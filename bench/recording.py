"""Recording figures on this machine (prints them; asserts nothing):

  - answer -> first recorded frame (ms)
  - skew between the two channels of a recording (ms)
  - call-path audio delay with recording minus without (ms) (R-REC-3: the fork adds none)
  - concurrent recorded calls held with no lost frames

    .venv/bin/python bench/recording.py [--calls 2 4 8] [--seconds 5]
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mppsim.app.org import parse_org  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402
from mppsim.recorder.wavfile import read  # noqa: E402

RATE = 8000


def org(users: int, record: str = "Always") -> dict:
    return {
        "organisation": {"name": "Bench", "recording": {"provider": "Dubber", "termsAccepted": ["Dubber"]}},
        "locations": [{"id": "hq", "name": "HQ"}],
        "users": [{"id": f"u{i:02d}", "name": f"User {i}", "extension": f"{2000 + i}", "location": "hq",
                   "devices": [{"type": "mpp"}], "callRecording": {"enabled": True, "record": record}}
                  for i in range(users)],
    }


def connect(sim, caller, callee, number):
    sim.dial(caller, number)
    sim.wait_for(callee, "ringing", 5)
    sim.answer(callee)
    sim.wait_for(caller, "connected", 5)
    sim.wait_for(callee, "connected", 5)


def finished(sim, who, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recs = [r for r in sim.recordings(who) if r["state"] != "recording"]
        if len(recs) >= n:
            return recs
        time.sleep(0.1)
    return [r for r in sim.recordings(who) if r["state"] != "recording"]


def onset_sample(x: np.ndarray, threshold: float = 300.0) -> int | None:
    blocks = x[: x.size // 160 * 160].reshape(-1, 160).astype(float)
    loud = np.nonzero(np.sqrt(np.mean(blocks ** 2, axis=1)) > threshold)[0]
    return int(loud[0]) * 160 if loud.size else None


def path_delay(sim, recording: bool, runs: int = 5) -> float:
    """Median ms from u00's tone switched on to its first loud frame at u01."""
    mode = "Always" if recording else "Never"
    sim.set_call_recording("u00", {"enabled": True, "record": mode})
    sim.set_call_recording("u01", {"enabled": True, "record": mode})
    delays = []
    for _ in range(runs):
        sim.play("u00", silence=True)
        connect(sim, "u00", "u01", "2001")
        time.sleep(0.6)
        started = sim.orch.request("u00", "play", tone=1000)
        time.sleep(0.6)
        p = sim.party("u01")
        onset = sim.orch.request(p.agent, "onset", line=p.line, after=started_at(started))["onset"]
        sim.hangup("u00")
        sim.wait_for("u01", "ended", 3)
        time.sleep(0.3)
        if onset is not None:
            delays.append((onset - started_at(started)) * 1000)
    return statistics.median(delays)


def started_at(source: dict) -> float:
    return source["started"]


def skew_and_first_frame(sim) -> tuple[float, float]:
    sim.set_call_recording("u00", {"enabled": True, "record": "Always"})
    sim.set_call_recording("u01", {"enabled": True, "record": "Never"})
    sim.play("u00", silence=True)
    sim.play("u01", silence=True)
    before = len(finished(sim, "u00", 0))
    connect(sim, "u01", "u00", "2000")
    answered = time.time()
    time.sleep(0.8)
    t_a = sim.orch.request("u00", "play", tone=1000)["started"]
    t_b = sim.orch.request("u01", "play", tone=1500)["started"]
    time.sleep(1.0)
    sim.hangup("u01")
    (rec,) = finished(sim, "u00", before + 1)[before:]
    _rate, audio = read(rec["audio_path"])
    left, right = onset_sample(audio[:, 0]), onset_sample(audio[:, 1])
    skew = ((right - left) / RATE - (t_b - t_a)) * 1000
    siprec = [e for e in sim.events if e["event"] == "siprec" and e.get("state") == "active"][-1]
    log = (sim.run_dir / "logs" / "recorder-w0.log").read_text()
    first_after_invite = float(re.findall(r"first frame (\d+) ms after the INVITE", log)[-1])
    invite_sent = siprec["ts"] - siprec["setup_ms"] / 1000
    first_frame = (invite_sent - answered) * 1000 + first_after_invite
    return skew, first_frame


def concurrency(calls: int, seconds: float) -> tuple[int, float]:
    """`calls` simultaneous calls, both parties recorded: recordings made, worst lost audio (ms)."""
    sim = Simulator(parse_org(org(2 * calls)), front_door_port=None)
    sim.start()
    try:
        for i in range(2 * calls):
            sim.play(f"u{i:02d}", tone=500 + 50 * i)
        for i in range(calls):
            sim.dial(f"u{2 * i:02d}", f"{2000 + 2 * i + 1}")
        for i in range(calls):
            sim.wait_for(f"u{2 * i + 1:02d}", "ringing", 10)
            sim.answer(f"u{2 * i + 1:02d}")
        for i in range(calls):
            sim.wait_for(f"u{2 * i:02d}", "connected", 10)
        time.sleep(seconds)
        for i in range(calls):
            sim.hangup(f"u{2 * i:02d}")
        time.sleep(1.0)
        talk = {c["from"]["id"]: c["talk_time"] for c in sim.call_log()}
        recs = finished(sim, None, 2 * calls, 15)
        worst = 0.0
        for r in recs:
            owner = r["owner"].split("@")[0].split(":")[1]
            caller = f"u{(int(owner) - 2000) // 2 * 2:02d}"
            _rate, audio = read(r["audio_path"])
            worst = max(worst, (talk[caller] - audio.shape[0] / RATE) * 1000)
        return len(recs), worst
    finally:
        sim.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    sim = Simulator(parse_org(org(2)), front_door_port=None)
    sim.start()
    try:
        without = path_delay(sim, recording=False)
        with_rec = path_delay(sim, recording=True)
        skew, first = skew_and_first_frame(sim)
    finally:
        sim.stop()
    print(f"answer -> first recorded frame: {first:.0f} ms")
    print(f"skew between the channels (right - left, after removing the start offset): {skew:.0f} ms")
    print(f"call-path delay: {without:.0f} ms without recording, {with_rec:.0f} ms with; "
          f"difference {with_rec - without:+.0f} ms (R-REC-3)")
    for n in args.calls:
        made, worst = concurrency(n, args.seconds)
        print(f"{n} concurrent calls, both parties recorded for {args.seconds:g} s: {made}/{2 * n} "
              f"recordings; worst shortfall against talk time {worst:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
