"""The OLD recorder worker (pjsua2, `--engine pjsua`), kept for side-by-side benchmarks: a SIPREC Session Recording Server (RFC 7866) for up to 4 sessions.

    python -m mppsim.recorder.srs_pjsua --listen 127.0.0.1:5070 --store DIR [--name w0]

It answers recording sessions from any SRC (mppsim's agents in either dialect, or a tester's own
SBC), writes each to the store (recorder/store.py): a stereo WAV (left = the first
participant's send stream, right = the other's), the metadata documents as received and an
SQLite index entry. Pauses (a=inactive, or c=0.0.0.0 as BroadWorks sends them) are left out of
the audio and kept as paused segments. What it cannot record it refuses with a 4xx and a reason,
and it stays up.

Threads as in the agent: pjsua2 callbacks only post to the main loop.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pjsua2 as pj

from mppsim.phone.callback_queue import CallbackQueue
from mppsim.phone.calls import snapshot
from mppsim.phone.endpoint import create_endpoint, create_transports, loopback_account
from mppsim.phone.media import FRAME_SAMPLES, PortPool, audio_format

from mppsim.siprec import status as siprec_status
from mppsim.siprec.metadata import Metadata, MetadataError, parse as parse_metadata
from mppsim.sip import message as sip_message
from mppsim.sip.sdp import labels as sdp_labels, paused as sdp_paused
from mppsim.siprec.sipmsg import is_siprec_src, metadata_part, sdp_part, split_multipart
from mppsim.recorder.store import Store

MAX_SESSIONS = 4            # pjsua's call limit in the PyPI build
WRITE_EVERY = 0.1           # seconds between moves of captured frames to the store


def enable_siprec_option(ep: pj.Endpoint) -> None:
    """Let pjsua accept `Require: siprec` (else it answers 420): add it to Supported."""
    lib = ctypes.CDLL(pj._pjsua2.__file__)
    lib.pjsua_get_pjsip_endpt.restype = ctypes.c_void_p
    endpt = lib.pjsua_get_pjsip_endpt()

    class PjStr(ctypes.Structure):
        _fields_ = [("ptr", ctypes.c_char_p), ("slen", ctypes.c_long)]
    value = PjStr(b"siprec", 6)
    lib.pjsip_endpt_add_capability.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                              ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(PjStr)]
    status = lib.pjsip_endpt_add_capability(endpt, None, pj.PJSIP_H_SUPPORTED, None, 1, ctypes.byref(value))
    if status != 0:
        raise RuntimeError(f"pjsip_endpt_add_capability failed: {status}")


class StreamPort(pj.AudioMediaPort):
    """Collects one recorded stream's frames for the main loop to write."""

    def __init__(self, name: str):
        super().__init__()
        self.frames: collections.deque = collections.deque()
        self.active = True
        self.createPort(name, audio_format())

    def onFrameReceived(self, frame):  # noqa: N802
        if not self.active:
            return   # idle in the pool
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO:
            self.frames.append(np.frombuffer(bytes(frame.buf), dtype=np.int16))
        else:
            self.frames.append(np.zeros(FRAME_SAMPLES, dtype=np.int16))

    def onFrameRequested(self, frame):  # noqa: N802
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class SrsCall(pj.Call):
    def __init__(self, post, account, call_id):
        super().__init__(account, call_id)
        self._post = post
        self.session: Session | None = None

    def onCallState(self, prm):  # noqa: N802
        snap = snapshot(self)
        if snap is not None:
            self._post(("state", self, snap))

    def onCallMediaState(self, prm):  # noqa: N802
        self._post(("media", self, None))

    def onCallRxReinvite(self, prm):  # noqa: N802
        self._post(("reinvite", self, prm.rdata.wholeMsg))


class SrsAccount(pj.Account):
    def __init__(self, post):
        super().__init__()
        self._post = post

    def onIncomingCall(self, prm):  # noqa: N802
        call = SrsCall(self._post, self, prm.callId)
        self._post(("incoming", call, prm.rdata.wholeMsg))


@dataclass
class Session:
    call: SrsCall
    metadata: Metadata
    labels: list[str]
    writer: object = None
    ports: list[StreamPort] = field(default_factory=list)   # [left, right]
    paused: bool = False
    t0: float = 0.0
    first_frame_at: float | None = None
    ended: bool = False


class Refusal(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class Worker:
    def __init__(self, host: str, port: int, store_dir: Path, name: str):
        self.host, self.port, self.name = host, port, name
        self.store = Store(store_dir)
        self.store_dir = Path(store_dir)
        self.callbacks = CallbackQueue()
        self.stream_ports = PortPool(StreamPort)   # reused, never freed while running
        self.post = self.callbacks.post   # what pjsua2 callbacks call, from their threads
        self.sessions: dict[int, Session] = {}
        self.calls: list[SrsCall] = []   # never freed while running (docs/decisions.md)
        self.stopping = False

    def log(self, text: str) -> None:
        print(f"srs {self.name}: {text}", flush=True)

    def start(self) -> None:
        log_dir = self.store_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.ep = create_endpoint(str(log_dir / f"srs-{self.name}.pjsip.log"))
        enable_siprec_option(self.ep)
        create_transports(self.ep, self.port)
        # RTP from SIP port + 10: mppsim-recorder keeps 50 ports per worker
        acfg = loopback_account(f"sip:srs@{self.host}:{self.port}",
                                f"<sip:srs@{self.host}:{self.port};transport=tcp>",
                                self.port + 10, 40, host=self.host)
        self.account = SrsAccount(self.post)
        self.account.create(acfg)
        # Recordings cut off by a crash of an earlier worker: make them playable, mark truncated
        for rid in self.store.repair_interrupted():
            self.log(f"repaired interrupted recording {rid} (truncated)")
        self.log(f"listening on {self.host}:{self.port} (udp+tcp), store {self.store_dir}")

    def run(self) -> None:
        next_write = time.monotonic()
        while not (self.stopping and not self.sessions):
            timeout = max(0.0, next_write - time.monotonic())
            try:
                select.select([self.callbacks], [], [], timeout)
            except InterruptedError:
                pass
            self.callbacks.drain(self, lambda text: self.log("error: " + text))
            if time.monotonic() >= next_write:
                self.write_frames()
                next_write = time.monotonic() + WRITE_EVERY
            if self.stopping:
                for s in list(self.sessions.values()):
                    try:
                        s.call.hangup(pj.CallOpParam(True))
                    except pj.Error:
                        self.finish(s)

    # ----- incoming sessions -------------------------------------------------------------
    def on_noop(self, _call, _data) -> None:
        pass

    def on_incoming(self, call: SrsCall, msg: str) -> None:
        self.calls.append(call)
        try:
            session = self.admit(call, msg)
        except Refusal as r:
            try:
                self.refuse(call, r)
            except pj.Error:
                pass
            return
        except pj.Error as exc:   # the SRC cancelled before we could look at the call
            self.log(f"session gone before answer: {exc.info()}")
            return
        call.session = session
        self.sessions[call.getId()] = session
        prm = pj.CallOpParam(True)
        prm.statusCode = 200
        prm.opt.audioCount = max(1, len(session.labels))   # or the 2nd stream gets port 0
        prm.opt.videoCount = 0
        try:
            call.answer(prm)
        except pj.Error as exc:   # CANCEL crossed our answer: nothing was recorded
            self.log(f"session cancelled before answer: {exc.info()}")
            self.finish(session)

    def refuse(self, call: SrsCall, r: Refusal) -> None:
        self.log(f"refused {r.code} {r.reason}")
        prm = pj.CallOpParam(True)
        prm.statusCode = r.code
        prm.reason = r.reason
        call.hangup(prm)

    def admit(self, call: SrsCall, msg: str) -> Session:
        if len(self.sessions) >= MAX_SESSIONS:
            raise Refusal(486, f"Recorder busy: {MAX_SESSIONS} sessions per worker")
        parsed = sip_message.read(msg)
        headers, body = parsed.by_name(), parsed.text
        if not is_siprec_src(headers):
            raise Refusal(403, "Not a recording session (no +sip.src, ;src or Require: siprec)")
        content_type = (headers.get("content-type") or [""])[0]
        if not content_type.lower().startswith("multipart/"):
            raise Refusal(400, "No recording metadata (expected multipart/mixed with SDP and rs-metadata)")
        try:
            parts = split_multipart(content_type, body)
        except ValueError as exc:
            raise Refusal(400, f"Bad multipart body: {exc}") from exc
        meta, sdp = metadata_part(parts), sdp_part(parts)
        if meta is None:
            raise Refusal(400, "No recording metadata part (application/rs-metadata+xml)")
        if sdp is None:
            raise Refusal(488, "No SDP in the recording session offer")
        try:
            md = parse_metadata(meta.body)
        except MetadataError as exc:
            raise Refusal(400, f"Bad metadata: {exc}") from exc
        md = siprec_status.merge(md, headers)     # webex dialect: mppsim's status is a header
        labels = sdp_labels(sdp.body)
        if not labels:
            raise Refusal(488, "No audio streams to record")
        self.check_provisioning(md)
        session = Session(call, md, labels)
        session.t0 = time.monotonic()
        ci = call.getInfo()
        participants = self.channels(md, labels)
        session.writer = self.store.begin(
            session_id=md.session_id, sip_call_id=md.sip_session_id, recording_call_id=ci.callIdString,
            dialect=md.dialect, owner=participants[0]["aor"], participants=participants,
            provider=self.provider(), tier=self.tier(),
            correlation=(md.broadworks or {}).get("extTrackingID") or md.group_id, worker=self.name)
        session.writer.add_metadata(meta.body)
        session.paused = sdp_paused(sdp.body)
        self.log(f"recording {md.sip_session_id} ({md.dialect}) for {participants[0]['aor']}")
        return session

    def channels(self, md: Metadata, labels: list[str]) -> list[dict]:
        """Left = the participant who sends the first labelled stream, right = the other."""
        by_stream = {s.id: s.label for s in md.streams}
        out = []
        for p in md.participants[:2]:
            sent = [by_stream.get(sid, "") for sid in p.send]
            out.append({"name": p.name, "aor": p.aor, "labels": sent})
        # order by the SDP order of the stream each one sends
        def position(entry):
            for i, label in enumerate(labels):
                if label and label in entry["labels"]:
                    return i
            return len(labels)
        out.sort(key=position)
        for entry, channel in zip(out, ("left", "right")):
            entry["channel"] = channel
            del entry["labels"]
        return out

    # Provider-side accounts, written by the app (R-PRV-6, R-USR-7): {"provider": ...,
    # "tier": ..., "manual": bool, "accounts": {userID: {serviceProvider, externalGroup, externalIdentifier}}}
    def provider_info(self) -> dict:
        path = self.store_dir / "provider.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def provider(self) -> str:
        return self.provider_info().get("provider", "")

    def tier(self) -> str:
        return self.provider_info().get("tier", "")

    def check_provisioning(self, md: Metadata) -> None:
        info = self.provider_info()
        if not info.get("manual") or md.broadworks is None:
            return
        bw = md.broadworks
        user = bw.get("userID", "")
        account = info.get("accounts", {}).get(user)
        if account is None:
            raise Refusal(403, f"No {info.get('provider')} account for user {user} (R-PRV-6)")
        for field_name, key in (("serviceProvider", "serviceProviderID"), ("externalGroup", "groupID"),
                                ("externalIdentifier", "userID")):
            if account.get(field_name) != bw.get(key):
                raise Refusal(403, f"Platform info mismatch for {user}: {field_name} "
                                   f"{account.get(field_name)!r} != {bw.get(key)!r} (R-USR-7)")

    # ----- in-session events -------------------------------------------------------------
    def on_reinvite(self, call: SrsCall, msg: str) -> None:
        s = call.session
        if s is None:
            return
        parsed = sip_message.read(msg)
        headers, body = parsed.by_name(), parsed.text
        content_type = (headers.get("content-type") or [""])[0]
        sdp_body = body
        if content_type.lower().startswith("multipart/"):
            parts = split_multipart(content_type, body)
            meta = metadata_part(parts)
            if meta is not None:
                s.writer.add_metadata(meta.body)
                try:
                    md = siprec_status.merge(parse_metadata(meta.body), headers, previous=s.metadata)
                    # a partial update carries only what is new; a complete one everything
                    new = md.events if md.datamode == "partial" else md.events[len(s.metadata.events):]
                    for ev in new:
                        if "announcement" in ev:
                            s.writer.announcement(ev)
                    if md.datamode == "partial":
                        s.metadata.events.extend(new)
                        s.metadata.state = md.state or s.metadata.state
                    else:
                        s.metadata = md
                except MetadataError as exc:
                    self.log(f"bad metadata update ignored: {exc}")
            sdp = sdp_part(parts)
            sdp_body = sdp.body if sdp is not None else ""
        paused = sdp_paused(sdp_body) if sdp_body else s.paused
        if paused != s.paused:
            at = time.monotonic() - s.t0
            self.drain(s)             # what came before the pause is kept
            (s.writer.pause if paused else s.writer.resume)(at)
            s.paused = paused
            self.log(f"{'paused' if paused else 'resumed'} at {at:.2f} s")

    def on_media(self, call: SrsCall, _data) -> None:
        s = call.session
        if s is None or s.ended:
            return
        try:
            ci = call.getInfo()
        except pj.Error:
            return
        if not s.ports:
            s.ports = [self.stream_ports.take(f"{call.getId()}-left"),
                       self.stream_ports.take(f"{call.getId()}-right")]
        audio_index = 0
        for idx in range(len(ci.media)):
            mi = ci.media[idx]
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.audioConfSlot >= 0 and audio_index < 2:
                try:
                    call.getAudioMedia(idx).startTransmit(s.ports[audio_index])
                except pj.Error:
                    pass   # an inactive stream has no slot: linked again on the next update
            audio_index += 1

    def on_state(self, call: SrsCall, snap: dict) -> None:
        s = call.session
        if s is None:
            return
        if snap["pj_state"] == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.finish(s)

    # ----- audio to the store ------------------------------------------------------------
    def drain(self, s: Session) -> None:
        if not s.ports or s.writer is None:
            return
        left, right = s.ports
        n = min(len(left.frames), len(right.frames))
        if n == 0 and len(left.frames) + len(right.frames) > 25:
            n = max(len(left.frames), len(right.frames))   # one stream is missing: pad it
        if n == 0:
            return
        pairs = [(left.frames.popleft() if left.frames else np.zeros(FRAME_SAMPLES, np.int16),
                  right.frames.popleft() if right.frames else np.zeros(FRAME_SAMPLES, np.int16))
                 for _ in range(n)]
        if s.paused:
            return               # paused audio is dropped, never stored
        l = np.concatenate([p[0] for p in pairs])
        r = np.concatenate([p[1] for p in pairs])
        if s.first_frame_at is None:
            s.first_frame_at = time.monotonic()
            self.log(f"first frame {1000 * (s.first_frame_at - s.t0):.0f} ms after the INVITE")
        s.writer.write(l, r)

    def write_frames(self) -> None:
        for s in list(self.sessions.values()):
            try:
                self.drain(s)
            except Exception:
                self.log("write failed: " + traceback.format_exc())

    def finish(self, s: Session) -> None:
        if s.ended:
            return
        self.drain(s)
        s.ended = True
        s.writer.finish()
        events = s.metadata.events
        # Plain On Demand (R-USR-2): the network records from answer but keeps the recording
        # only if the user pressed Record; otherwise the SRC says so and nothing stays.
        if any(e.get("provisional") for e in events) and not any(e.get("kept") for e in events):
            self.store.delete(s.writer.id)
            self.log(f"discarded provisional recording of {s.metadata.sip_session_id}")
        for port in s.ports:
            self.stream_ports.give_back(port)
        s.ports = []
        self.sessions.pop(s.call.getId(), None)
        self.log(f"finished {s.metadata.sip_session_id}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mppsim-recorder-worker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:5070", help="HOST:PORT for SIP (UDP and TCP)")
    ap.add_argument("--store", required=True, help="store folder (index.sqlite + recordings/)")
    ap.add_argument("--name", default="w0", help="worker name, kept in the index")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started us dies (the app uses this)")
    args = ap.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    worker = Worker(host, int(port), Path(args.store), args.name)

    def on_term(_sig, _frame):
        worker.stopping = True
        worker.post(("noop", None, None))

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if args.exit_with_parent:
        parent = os.getppid()

        def watch_parent():
            # An app that crashed cannot stop us: notice it (we get re-parented) and stop.
            while not worker.stopping:
                time.sleep(1.0)
                if os.getppid() != parent:
                    on_term(None, None)

        threading.Thread(target=watch_parent, daemon=True, name="parent-watch").start()
    try:
        worker.start()
        worker.run()
    except Exception:
        traceback.print_exc()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)   # no pjsua teardown (docs/decisions.md)


if __name__ == "__main__":
    sys.exit(main())
