"""Participant changes of issue 13's call features as a third-party SRS receives them in the
webex dialect (SIPp answering as the SRS): a three-way conference's joins and leaves reach it
as UPDATEs with the complete new participant list, as Webex Calling sends them.
(mppsim's own pjsua2 recorder drops messages over 4000 bytes until issue 9; docs/decisions.md.)"""
from __future__ import annotations

import time

import pytest

from tests.helpers import connect, hang_up_everything
from mppsim.siprec.metadata import parse
from mppsim.siprec.sipmsg import metadata_part, split_multipart
from sipp_srs import SippSrs

A, B, C = "sip:1001@127.0.0.1", "sip:1002@127.0.0.1", "sip:1003@127.0.0.1"


@pytest.fixture(scope="module")
def sim_org():
    """`sim` with the demo org's own ring timeout."""
    return {"voicemail": False}


def participant_lists(srs, method):
    out = []
    for m in srs.received():
        if m.method != method:
            continue
        meta = metadata_part(split_multipart(m.header("content-type"), m.body))
        if meta is not None:
            out.append(sorted(p.aor for p in parse(meta.body).participants))
    return out


def test_r_rec_4_conference_reaches_a_sipp_srs_as_updates_with_the_participants(sim, tmp_path):
    """R-REC-4: carol joining and leaving alice's conference = two UPDATEs, each with the
    complete participant list, to an SRS that is not mppsim's."""
    srs = SippSrs(tmp_path, calls=2).start()   # the conference and the consultation
    sim.settings.set_org({"recorders": {"Dubber": srs.uri}})
    try:
        sim.set_call_recording("alice", {"enabled": True, "record": "Always"})
        for who in ("bob", "carol", "dave"):
            sim.set_call_recording(who, {"enabled": True, "record": "Never"})
        connect(sim, "bob", "alice", "1001")
        sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
        # conference: alice adds carol, then carol leaves
        sim.start_conference("alice", "1003")
        sim.wait_for("carol", "ringing", 3)
        sim.answer("carol")
        sim.wait_until(lambda: sim.call_state("carol") == "connected", 3, "carol answered")
        time.sleep(0.3)
        sim.merge_conference("alice")
        time.sleep(1.0)
        sim.hangup("carol")
        time.sleep(1.0)
        sim.hangup("bob")
        sim.wait_for("alice", "ended", 3)
        time.sleep(1.0)
    finally:
        sim.settings.set_org({"recorders": {"Dubber": None}})
        srs.stop()
        hang_up_everything(sim)
    updates = participant_lists(srs, "UPDATE")
    assert [A, B, C] in updates                               # carol joined
    assert updates[-1] == [A, B]                              # and left
