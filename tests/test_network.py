"""mppsim off loopback (issue 21): an SRS on another host (mppsim-recorder in a network namespace
of the test's own, over a veth pair) records both parties of a call in the right channels when
the run's address is set; left on 127.0.0.1 (the bug) the same SRS gets the SIPREC sessions but
no RTP, and the recording is marked "no audio" instead of silently complete. Nothing the agents
send says 127.0.0.1 once another address is chosen."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from mppsim.app.network import Network
from mppsim.app.simulator import Simulator
from mppsim.phone.analysis import analyse
from mppsim.recorder.wavfile import read
from tests.helpers import TONES, connect, demo_org
from tests.netns import Lab
from tests.peers.recorder_proc import start_recorder


@pytest.fixture(scope="module")
def lab():
    with Lab() as made:
        yield made


@pytest.fixture(scope="module")
def srs(lab, tmp_path_factory):
    """mppsim-recorder on the other host, as a lab's SRS would be."""
    rec = start_recorder(tmp_path_factory.mktemp("srs") / "store", "--tls", "--rtp-timeout", "0",
                         listen=f"{lab.there}:0", prefix=lab.prefix)
    yield rec
    rec.stop()


def recorded_call(tmp_path, srs, address: str | None, target: str, tls_ca: str = "",
                  srtp: str = "off") -> tuple[dict, Simulator]:
    """alice (recorded Always) calls bob; 2 s of both tones; the SRS's row for it."""
    org = demo_org(voicemail=False)
    org = dataclasses.replace(org, network=Network(tls_ca=tls_ca, srtp=srtp))
    sim = Simulator(org, run_dir=tmp_path / "run", address=address)
    sim.start()
    try:
        for who in ("alice", "bob"):
            sim.play(who, tone=TONES[who])
        sim.settings.set_org({"recorders": {"Dubber": target}})
        sim.set_call_recording("alice", {"enabled": True, "record": "Always",
                                         "notification": {"enabled": False}})
        before = {r["id"] for r in srs.rows()}
        connect(sim, "alice", "bob", "1002")
        sim.wait_until(lambda: sim.indicator("alice") == "recording", 5, "alice recording")
        time.sleep(2.0)
        sim.hangup("alice")
        sim.wait_for("bob", "ended", 3)
        rows = srs.wait_rows(lambda r: r["id"] not in before and r["state"] != "recording", 10)
    finally:
        sim.stop()
    return rows[0], sim


def channels(srs, row) -> tuple[float | None, float | None]:
    rate, audio = read(Path(srs.store) / row["audio_file"])
    return tuple(analyse(audio[:, i], rate).freq_hz for i in (0, 1))


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_an_srs_on_another_host_records_both_parties(lab, srs, tmp_path, transport):
    row, sim = recorded_call(tmp_path, srs, lab.here, f"sip:srs@{srs.sip};transport={transport}")
    left, right = channels(srs, row)
    assert left == pytest.approx(TONES["alice"], rel=0.02) and right == pytest.approx(TONES["bob"], rel=0.02)
    assert not row["suspect"], row["suspect_reason"]
    assert all(s["received"] > 50 and not s["srtp"] for s in row["stream_stats"]), row["stream_stats"]
    assert f"for sip:1001@{lab.here} from {transport}:{lab.here}:" in srs.log()   # the SIPREC's transport
    # nothing on the wire says 127.0.0.1: the metadata's AoRs, the SRS's view of the SRC
    docs = "".join((Path(srs.store) / f).read_text() for f in row["metadata_files"])
    assert "127.0.0.1" not in docs and f"@{lab.here}" in docs
    assert all("127.0.0.1" not in p["aor"] for p in row["participants"])
    sent = [s for s in sim.siprec_sessions() if s["agent"] == "alice" and s["state"] == "ended"]
    assert sent and min(sent[-1]["sent"]) > 50, sent          # the agent's own counters agree


def test_left_on_loopback_the_remote_srs_gets_no_rtp_and_the_recording_says_no_audio(lab, srs, tmp_path):
    """The issue's first finding: SIPREC arrives, RTP (bound to 127.0.0.1) cannot leave the host."""
    row, _sim = recorded_call(tmp_path, srs, None, f"sip:srs@{srs.sip};transport=tcp")
    assert row["suspect"] and row["suspect_reason"].startswith("no audio"), row
    assert [s["received"] for s in row["stream_stats"]] == [0, 0]
    assert "no audio" in srs.log()


def test_an_srs_on_another_host_records_over_tls_checked_against_the_org_s_ca(lab, srs, tmp_path):
    """The SRS's certificate (mppsim-recorder --tls says where it is) is the org's network.tls_ca."""
    assert srs.ready["tls_cert"] and Path(srs.ready["tls_cert"]).exists()
    row, _sim = recorded_call(tmp_path, srs, lab.here, srs.ready["tls_target"], tls_ca=srs.ready["tls_cert"])
    left, right = channels(srs, row)
    assert left == pytest.approx(TONES["alice"], rel=0.02) and right == pytest.approx(TONES["bob"], rel=0.02)
    assert "tls" in srs.log().lower()


def test_an_srs_whose_certificate_the_org_does_not_trust_is_refused(lab, srs, tmp_path):
    """Without the SRS's CA the TLS handshake fails: no recording, the agent says why."""
    sim = Simulator(demo_org(voicemail=False), run_dir=tmp_path / "run", address=lab.here)
    sim.start()
    try:
        sim.settings.set_org({"recorders": {"Dubber": srs.ready["tls_target"]}})
        sim.set_call_recording("alice", {"enabled": True, "record": "Always", "notification": {"enabled": False}})
        connect(sim, "alice", "bob", "1002")
        sim.wait_until(lambda: any(s["state"] == "failed" for s in sim.siprec_sessions()), 8, "the refusal")
        failed = [s for s in sim.siprec_sessions() if s["state"] == "failed"][-1]
        assert "TLS" in (failed.get("reason") or "") and "certificate" in failed["reason"].lower(), failed
    finally:
        sim.stop()


@pytest.mark.parametrize("srtp", ["optional", "mandatory"])
def test_an_srs_on_another_host_records_srtp_over_tls(lab, srs, tmp_path, srtp):
    """SIPREC over TLS with its media as SRTP keyed by SDES: the SRS (libsrtp through pylibsrtp)
    decrypts both streams; nothing it stored came from a packet it could not authenticate."""
    row, _sim = recorded_call(tmp_path, srs, lab.here, srs.ready["tls_target"], tls_ca=srs.ready["tls_cert"],
                              srtp=srtp)
    left, right = channels(srs, row)
    assert left == pytest.approx(TONES["alice"], rel=0.02) and right == pytest.approx(TONES["bob"], rel=0.02)
    assert all(s["received"] > 50 and s["garbage"] == 0 and s["srtp"] == "AES_CM_128_HMAC_SHA1_80"
               for s in row["stream_stats"]), row["stream_stats"]


def test_a_softphone_on_another_host_calls_a_user_over_tcp_and_the_dialog_stays_on_tcp(lab, tmp_path):
    """baresip in the other namespace dials the front door at the run's address over TCP: the
    302, the INVITE, its ACK and the BYE all on TCP; each side hears the other."""
    from tests.test_softphone_transports import baresip, dialog_transports, heard_by_baresip
    sim = Simulator(demo_org(voicemail=False), run_dir=tmp_path / "run", address=lab.here).start()
    try:
        sim.play("carol", tone=TONES["carol"])
        sim.set_auto_answer("carol", 0.2)
        proc, _port, snd = baresip(tmp_path, f"/dial sip:1003@{lab.here}:{sim.front_door.port};transport=tcp",
                                   seconds=12, host=lab.there, prefix=lab.prefix)
        try:
            sim.wait_for("carol", "connected", 8)
            time.sleep(1.5)
            assert sim.listen("carol", 1.0)["freq_hz"] == pytest.approx(600, rel=0.02)
            sim.hangup("carol")
            sim.wait_for("carol", "ended", 3)
            time.sleep(0.5)
        finally:
            proc.terminate()
            trace = proc.communicate(timeout=10)[0]
    finally:
        sim.stop()
    seen = dialog_transports(trace)
    assert {"INVITE", "ACK", "BYE"} <= set(seen) and all(t == {"tcp"} for t in seen.values()), seen
    assert "127.0.0.1" not in trace.split("/dial", 1)[-1], "something in SIP said 127.0.0.1"
    assert heard_by_baresip(snd) == pytest.approx(TONES["carol"], rel=0.02)


def test_an_address_that_is_not_this_host_s_is_refused_before_anything_starts(tmp_path):
    from mppsim.app.simulator import SimulatorError
    with pytest.raises(SimulatorError, match="not an address of this host"):
        Simulator(demo_org(), run_dir=tmp_path / "run", address="192.0.2.77")


def test_load_on_the_lab_address_records_with_the_embedded_recorder_there(lab, tmp_path):
    """`mppsim load --address`: agents and the embedded recorder on the chosen address; the
    report counts the packets recorded and no recording without audio."""
    from mppsim.app.load import LoadConfig, run_load
    report = run_load(LoadConfig(calls=2, rate=2, duration=1, hold=2.5), users=2, run_dir=str(tmp_path / "run"),
                      address=lab.here, out=lambda _text: None)
    store = report["recordings"]["store"]
    assert report["calls"]["completed"] >= 2 and store["in_store"] >= 2, report
    assert store["no_audio"] == 0 and store["rtp_packets"]["min_per_stream"] > 50, store
    from mppsim.recorder.store import Store
    assert all(r["owner"].endswith(f"@{lab.here}") for r in Store(tmp_path / "run" / "recorder").list())
