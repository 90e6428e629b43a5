"""One recording session of the SRS (recorder/srs.py): it keeps and changes its own state.

A session applies its own offers and re-offers, pauses and resumes, takes metadata updates (the
participants' timeline), moves its audio to the store and ends itself. The `Recorder` keeps what
is shared: dispatch (which session a message belongs to), the sockets, the store and its lanes,
limits and counters. Why the split: the session's behaviour had grown into 13 `Recorder` methods
that each took the session as their first argument (issue 20; the model is aiortc's
RTCRtpReceiver, which keeps and changes its own state).

What a session needs from its recorder is narrow (`SessionHost`): the store, the worker's name,
the provider accounts and a log line. Store writes run on the session's lane (one single-thread
executor per session, shared with others) so its writes stay ordered and never stall the loop.

A store write that fails because of the storage (disk full, read-only, folder gone: issue 26)
ends the session: the recorder cannot keep what the SRC sends, and the SRC must know so that it
applies the organisation's failure behaviour (R-ORG-3). So the session notes the cause
(`store_failed`, set on its lane), its next tick returns it and the recorder sends a BYE with a
Reason header; the row is closed `truncated` with that cause as `ended_by` and the audio so far.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple, Protocol

import numpy as np

from mppsim.siprec import metadata as md_mod
from mppsim.siprec.metadata import Metadata, MetadataError
from mppsim.recorder.rtp import codecs
from mppsim.recorder.rtp.receiver import SILENCE, StreamReceiver
from mppsim.sip.dialog import Dialog
from mppsim.sip.message import Request
from mppsim.sip.uri import user as uri_user
from mppsim.recorder.answer import Offer
from mppsim.recorder.transport import Peer
from mppsim.siprec.request import merge_status
from mppsim.recorder.store import STORAGE_ERROR, Store, storage_cause

JITTER = 0.2                # s of audio held back so late packets still find their place
STALL = 2.0                 # s the audio written may lag the clock when no RTP arrives
PAUSED_TIMEOUT = 3600.0     # s a paused session (no RTP by design) may stay silent on SIP
NO_AUDIO_AFTER = 1.0        # s of unpaused recording before missing audio is a verdict
FEW_PACKETS_PER_S = 5.0     # below this a stream got "far less than its length": 20 ms = 50/s,
                            # 60 ms = 16.7/s; silence suppression (DTX) can also land here
NO_AUDIO = "no audio"       # every verdict about missing packets begins with it (the portal,
                            # `mppsim run` and scenario expects look for it)


def audio_verdict(stats: list[dict], live_seconds: float) -> str:
    """Why a recording lacks audio, or "" (issue 21). Before this a recording whose RTP never
    arrived (an SRS on another host, its RTP sent to 127.0.0.1) was stored `complete`, silent, and
    nothing said so."""
    if live_seconds < NO_AUDIO_AFTER or not stats:
        return ""
    got = [st["received"] for st in stats]
    if not any(got):
        return (f"{NO_AUDIO}: no RTP packet arrived on any of the {len(stats)} streams in "
                f"{live_seconds:.1f} s (can the SRC's RTP reach this recorder's address and ports?)")
    few = [f"{st.get('channel') or st.get('label') or i} ({st['received']} packets)"
           for i, st in enumerate(stats) if st["received"] < FEW_PACKETS_PER_S * live_seconds]
    if few:
        return (f"{NO_AUDIO} on {', '.join(few)} in {live_seconds:.1f} s "
                f"(a 20 ms stream sends {50 * live_seconds:.0f})")
    return ""


# s without RTP after the SRC's connection closed: the SRC is gone (killed, its host lost). An
# SRC that is alive sends RTP all the time (silence too) and reopens a closed connection for its
# next request, so a closed connection alone proves nothing; with the media stopped it does.
SRC_LOST_AFTER = 2.0


class SessionHost(Protocol):
    """What a session uses of its recorder."""
    store: Store
    name: str                                # the worker's name (the store row's `worker`)

    def out(self, text: str) -> None: ...
    def provider_info(self) -> dict: ...


class Closed(NamedTuple):
    """What `Session.end` reports for the recorder's counters and log line."""
    received: int
    lost: int
    discarded: bool
    suspect: str


def wideband(m) -> bool:
    first = next((enc for enc, _ in m.decodable().values() if enc != "TELEPHONE-EVENT"), "")
    return first in ("G722", "OPUS")


@dataclass(eq=False)
class Session:
    dialog: Dialog
    peer: Peer
    metadata: Metadata
    offer: Offer
    t0: float
    rate: int
    names: dict[str, str]                    # URI user part -> display name from the headers
    invite: Request
    host: SessionHost
    lane: ThreadPoolExecutor
    first_metadata: bytes = b""              # the INVITE's document, stored once the row exists
    receivers: list[StreamReceiver] = field(default_factory=list)   # [left, right]
    writer: object = None
    state: str = "pending"                   # pending | live | ended
    paused: bool = False
    cancelled: bool = False                  # a CANCEL or BYE came before our 200: not answered
    last_sip: float = 0.0
    expires: int = 0                         # negotiated session interval (s), 0 = none
    refreshed: float = 0.0
    timeline: list[dict] = field(default_factory=list)
    sdp_version: int = 1
    begun: bool = False                      # store row + WAV requested (begin)
    sdp_paused: bool = False                 # every recorded stream inactive
    meta_paused: bool = False                # the metadata's (mppsim) state is "paused"
    wall0: float = 0.0                       # t0 on the wall clock: started_at, the WAV's sample 0
    store_failed: str = ""                   # the storage cause that ends it (set on its lane)
    paused_seconds: float = 0.0              # paused time so far (the no-audio verdict)
    paused_at: float | None = None
    connection_lost: float = 0.0             # when the SRC's TCP/TLS connection closed (monotonic)

    @property
    def at(self) -> float:
        return time.monotonic() - self.t0

    @property
    def source(self) -> str:
        return self.peer.addr[0]

    @property
    def offers_wideband(self) -> bool:
        return any(wideband(m) for _, m in self.offer.recorded())

    @property
    def recorded_call_id(self) -> str:
        """The recorded call's Call-ID: sipSessionID, else BroadWorks' callID, else the SIPREC
        INVITE's Session-ID / Call-ID (issue 9, class 7: never empty)."""
        md = self.metadata
        return (md.sip_session_id or (md.broadworks or {}).get("callID")
                or (self.invite.get("session-id") or "").split(";")[0].strip() or self.invite.call_id)

    # ----- signalling ------------------------------------------------------------------------
    def add_stream(self, rx: StreamReceiver, m) -> None:
        """A recorded m-line's receiver (in m-line order: left, then right)."""
        rx.on_first = self.begin
        rx.set_formats(m.decodable())
        rx.set_crypto(m)
        self.receivers.append(rx)

    def start_timeline(self) -> None:
        self.timeline = [dict(p, **{"from": 0.0, "to": None}) for p in self.channels(self.metadata)]

    def go_live(self) -> None:
        """Our 200 goes out: live, and paused from the start if the offer or the metadata says so."""
        self.state = "live"
        self.sdp_paused = all(m.state == "inactive" for _, m in self.offer.recorded())
        self.meta_paused = self.metadata.state == "paused"
        self.paused = self.sdp_paused or self.meta_paused
        if self.paused:
            self.paused_at = self.at
            self.begin("")
            self.lane.submit(self.store_call, "pause", 0.0)

    def acked(self) -> None:
        self.dialog.confirmed = True
        self.last_sip = time.monotonic()

    def cancel(self) -> None:
        """A CANCEL or a BYE before our 200: the set-up, when it is over, ends the session."""
        if self.state == "pending":
            self.cancelled = True

    def refreshed_now(self) -> None:
        """An in-dialog offer or update: SIP is alive and the session timer restarts."""
        self.last_sip = self.refreshed = time.monotonic()
        self.connection_lost = 0.0        # it came on a new connection: the SRC is there

    def bye(self, reason: str | None = None) -> None:
        """Our BYE; ``reason`` a Reason header value (RFC 3326), else the timeout's."""
        if self.state == "live":
            self.peer.send(self.dialog.bye() if reason is None else self.dialog.bye(reason=reason))

    def apply_offer(self, offer: Offer) -> dict[int, int]:
        """A re-offer: new formats, pause or resume; the ports of the answer's m-lines."""
        recorded = offer.recorded()
        for (_, m), rx in zip(recorded, self.receivers):
            if m.recordable:
                rx.set_formats(m.decodable())
                rx.set_crypto(m)
        if recorded:
            self.sdp_paused = all(m.state == "inactive" for _, m in recorded)
        self.offer = offer if len(recorded) >= len(self.offer.recorded()) else self.offer
        self.update_pause()
        self.sdp_version += 1
        return {i: rx.port for (i, m), rx in zip(recorded, self.receivers) if m.recordable
                or m.state == "inactive"}

    def ports(self) -> dict[int, int]:
        """The ports of our current session description (an offerless re-INVITE's answer)."""
        return {i: rx.port for (i, _m), rx in zip(self.offer.recorded(), self.receivers)}

    def update_pause(self) -> None:
        """Paused = every recorded stream inactive (a=inactive, c=0.0.0.0, port 0) or the
        metadata's state says paused (mppsim's status); what is paused is never stored."""
        paused = self.sdp_paused or self.meta_paused
        if paused != self.paused:
            self.begin("")
            at = self.at
            upto = int(at * self.rate)
            if paused:
                self.move_audio(upto)                 # what came before the pause is kept
                self.lane.submit(self.store_call, "pause", at)
            else:
                for rx in self.receivers:
                    rx.skip(upto)                     # paused audio is never stored
                self.lane.submit(self.store_call, "resume", at)
            self.paused = paused
            if paused:
                self.paused_at = at
            elif self.paused_at is not None:
                self.paused_seconds += at - self.paused_at
                self.paused_at = None
            self.host.out(f"{'paused' if paused else 'resumed'} {self.invite.call_id} at {at:.2f} s"
                          f" ({'sdp' if self.sdp_paused else ''}"
                          f"{'+' if self.sdp_paused and self.meta_paused else ''}"
                          f"{'metadata' if self.meta_paused else ''}{'' if paused else 'both clear'})")

    # ----- metadata --------------------------------------------------------------------------
    def update_metadata(self, meta: bytes | None, req: Request) -> str | None:
        """A metadata document (kept as received) and/or mppsim's status header of an update.
        Returns why it was ignored (not understood: the recorder counts and logs it), or None."""
        self.begin("")                   # the row must exist before what updates it
        if meta is not None:
            self.lane.submit(self.store_call, "add_metadata", meta)
        try:
            if meta is None:             # the status header alone: an empty partial update
                md = Metadata(dialect=self.metadata.dialect, datamode="partial", group_id="",
                              session_id=self.metadata.session_id, sip_session_id="")
            else:
                md = md_mod.parse(meta)
            md = merge_status(md, req, previous=self.metadata)
        except Exception as exc:   # noqa: BLE001 - kept as received, not understood: logged
            return str(exc) if isinstance(exc, MetadataError) else type(exc).__name__
        old = self.metadata
        new_events = md.events if md.datamode == "partial" else md.events[len(old.events):]
        for ev in new_events:
            if "announcement" in ev:
                self.lane.submit(self.store_call, "announcement", ev)
        if md.datamode == "partial":
            old.events.extend(new_events)
            old.state = md.state or old.state
            if md.participants or md.left:
                merged = {p.id: p for p in old.participants}
                for p in md.participants:
                    merged[p.id] = p
                for pid in md.left:
                    merged.pop(pid, None)
                old.participants = list(merged.values())
                known = {st.id for st in old.streams}
                old.streams += [st for st in md.streams if st.id not in known]
        else:
            md.events = old.events + new_events if md.events[:len(old.events)] != old.events else md.events
            self.metadata = md
        self.update_timeline()
        self.meta_paused = self.metadata.state == "paused"
        self.update_pause()
        return None

    def update_timeline(self) -> None:
        """Participants become a timeline: who was on which channel from when to when."""
        now = round(self.at, 3)
        current = self.channels(self.metadata)
        on = {(e["aor"], e["channel"]): e for e in self.timeline if e["to"] is None}
        keys = {(p["aor"], p["channel"]) for p in current}
        changed = False
        for key, e in on.items():
            if key not in keys:
                e["to"] = now
                changed = True
        for p in current:
            key = (p["aor"], p["channel"])
            if key in on:
                if p["name"] and not on[key]["name"]:
                    on[key]["name"] = p["name"]
                    changed = True
            else:
                self.timeline.append(dict(p, **{"from": now, "to": None}))
                changed = True
        if changed:
            live = [{k: v for k, v in e.items() if k not in ("from", "to", "id")} for e in self.timeline
                    if e["to"] is None]
            self.lane.submit(self.update_row, participants=live,
                             participants_timeline=[dict(e) for e in self.timeline],
                             owner=next((e["aor"] for e in live if e.get("channel") == "left"), None))

    def channels(self, md: Metadata) -> list[dict]:
        """Participants with their channel: the one who sends the first recorded m-line's stream
        is left, the second's right; others (a conference) without channel."""
        labels = [m.label for _, m in self.offer.recorded()]
        by_stream = {st.id: st.label for st in md.streams}
        out = []
        for p in md.participants:
            sent = [by_stream.get(sid, "") for sid in p.send]
            name = p.name or self.names.get(uri_user(p.aor).lstrip("+"), "")
            out.append({"name": name, "aor": p.aor, "labels": sent, "id": p.id})

        def position(entry):
            for i, label in enumerate(labels):
                if label and label in entry["labels"]:
                    return i
            return len(labels)
        out.sort(key=position)                    # stable: metadata order among equals
        taken: set[str] = set()
        for entry in out:
            # the channel of the stream the participant sends; a conference's mixed stream
            # carries several participants, so a channel may have more than one
            pos = position(entry)
            entry["channel"] = ("left", "right")[pos] if pos < 2 else None
            taken.add(entry["channel"])
        for entry in out:                         # no label matched (none sent): metadata order
            if entry["channel"] is None and position(entry) >= len(labels):
                free = [c for c in ("left", "right") if c not in taken]
                if free:
                    entry["channel"] = free[0]
                    taken.add(free[0])
        for entry in out:
            del entry["labels"]
        return out

    # ----- store (on the session's lane) ---------------------------------------------------
    def begin(self, encoding: str) -> None:
        """The WAV's rate: 16 kHz when the first audio that arrives is wideband (G.722, opus),
        else 8 kHz; without audio (a pause, a silent second) the offer's first codec decides.
        Then the row and the file are made (on the session's lane: later writes queue behind)."""
        if self.begun:
            return
        if encoding:
            self.rate = codecs.audio_rate(encoding)
        else:
            self.rate = 16000 if self.offers_wideband else 8000
        for rx in self.receivers:
            rx.rate = self.rate
        self.begun = True
        info = self.host.provider_info()
        md, req = self.metadata, self.invite
        participants = [{k: v for k, v in e.items() if k not in ("from", "to", "id")} for e in self.timeline]
        kwargs = dict(session_id=md.session_id, sip_call_id=self.recorded_call_id,
                      recording_call_id=req.call_id, dialect=md.dialect,
                      owner=next((p["aor"] for p in participants if p.get("channel") == "left"),
                                 participants[0]["aor"] if participants else ""),
                      participants=participants, provider=info.get("provider", "") or "",
                      tier=info.get("tier", "") or "",
                      correlation=(md.broadworks or {}).get("extTrackingID")
                      or req.get("x-broadworks-correlation-info") or md.group_id,
                      worker=self.host.name, rate=self.rate,
                      started_at=datetime.fromtimestamp(self.wall0, timezone.utc))
        meta, timeline = self.first_metadata, [dict(e) for e in self.timeline]

        def begin():
            try:
                self.writer = self.host.store.begin(**kwargs)
            except Exception as exc:   # noqa: BLE001 - disk full, index locked for 15 s...
                self.host.out(f"cannot store {req.call_id}: {type(exc).__name__}: {exc}")
                # nothing can be kept: the session ends (a busy index too: it waited 15 s)
                self.storage_failed(exc, STORAGE_ERROR)
                return
            self.store_call("add_metadata", meta)
            self.update_row(participants_timeline=timeline)
        self.lane.submit(begin)

    def store_call(self, method: str, *args) -> None:
        if self.store_failed:
            return                               # said once; the session is ending
        try:
            if self.writer is not None:
                getattr(self.writer, method)(*args)
        except Exception as exc:   # noqa: BLE001 - a store error loses that write, not the server
            self.host.out(f"store {method} failed for {self.invite.call_id}: {type(exc).__name__}: {exc}")
            self.storage_failed(exc)

    def update_row(self, **cols) -> None:
        try:
            if self.writer is not None:
                if cols.get("owner") is None:
                    cols.pop("owner", None)
                self.host.store._update(self.writer.id, **cols)
        except Exception as exc:   # noqa: BLE001
            self.host.out(f"index update failed for {self.invite.call_id}: {type(exc).__name__}: {exc}")
            self.storage_failed(exc)

    def storage_failed(self, exc: BaseException, default: str | None = None) -> None:
        """A store call failed (on the lane): when the storage itself failed, the session ends
        (its next tick) and the whole store stops writing until it is sound again (another
        session's write would fail the same way; the reserve goes to closing the rows)."""
        cause = storage_cause(exc) or default
        if cause is not None:
            self.store_failed = cause
            self.host.store.block(cause)

    def move_audio(self, upto: int, batch: dict | None = None) -> None:
        """Hand the audio up to sample ``upto`` of both channels to the store (in ``batch``:
        one lane job per tick for all its sessions, not one thread hand-off per session)."""
        if not self.receivers or not self.begun:
            return
        chans = [rx.drain(upto) for rx in self.receivers[:2]]
        if len(chans) == 1:
            chans.append(np.zeros_like(chans[0]))
        if len(chans[0]) and not self.paused:
            if batch is None:
                self.lane.submit(self.store_call, "write", chans[0], chans[1])
            else:
                batch.setdefault(self.lane, []).append((self, chans[0], chans[1]))

    # ----- time -------------------------------------------------------------------------------
    def tick(self, now: float, batch: dict, rtp_timeout: float) -> str | None:
        """A live session's timer work: retransmit our 200 until ACKed, move the audio that is
        due; returns why it must end now (no-ack, timeout, session-timer), or None."""
        if self.dialog.due_retransmit(now):
            self.peer.send(self.dialog.ok_bytes)
        if self.dialog.ack_overdue(now):
            self.host.out(f"no ACK for {self.invite.call_id} in 32 s: ending it")
            return "no-ack"
        failed = self.store_failed or (self.writer.failure if self.writer is not None else None) or ""
        if failed:
            self.store_failed = failed
            self.host.out(f"store failed for {self.invite.call_id} ({failed}): ending it")
            return failed
        if not self.begun:
            if now - self.t0 < 1.0:
                return None                  # waiting for the first audio to pick the rate
            self.begin("")
        upto = int((now - self.t0 - JITTER) * self.rate)
        # Never ahead of the audio that has arrived (a stalled loop reads its sockets after
        # this timer: their packets are not late), but at most STALL behind the clock.
        high = max(rx.high for rx in self.receivers) if self.receivers else upto
        upto = max(min(upto, high), int((now - self.t0 - STALL) * self.rate))
        if self.paused:
            for rx in self.receivers:
                rx.skip(upto)
        else:
            self.move_audio(upto, batch)
        last = max([self.last_sip] + [rx.last_rx for rx in self.receivers])
        limit = PAUSED_TIMEOUT if self.paused else rtp_timeout
        # when both apply, the rule whose time came first names the end, not the tick that saw
        # them (a short --rtp-timeout and an SRC that closed its connection after its last RTP)
        lost_at = (max(last, self.connection_lost) + SRC_LOST_AFTER
                   if self.connection_lost and not self.paused else None)
        timeout_at = last + limit if rtp_timeout else None
        if lost_at is not None and now > lost_at and (timeout_at is None or lost_at <= timeout_at):
            self.host.out(f"connection closed and no RTP for {SRC_LOST_AFTER:.0f} s on "
                          f"{self.invite.call_id}: the SRC is gone, ending it (src-lost)")
            return "src-lost"
        if timeout_at is not None and now > timeout_at:
            self.host.out(f"no RTP and no SIP for {limit:.0f} s on {self.invite.call_id}: ending it (timeout)")
            return "timeout"
        if self.expires and now - self.refreshed > self.expires:
            self.host.out(f"session timer of {self.invite.call_id} expired ({self.expires} s): ending it")
            return "session-timer"
        return None

    # ----- ending ---------------------------------------------------------------------------
    async def end(self, why: str, delete: bool = False) -> Closed | None:
        """The session is over (the recorder no longer dispatches to it): the last audio, the
        streams' counters, the suspect verdict, and the row finished (or deleted: a discarded
        On Demand recording, a failed set-up). None when no row was ever asked for."""
        was_pending = self.state == "pending"
        self.state = "ended"
        at = self.at
        if not was_pending and not delete:
            self.begin("")                           # a session without audio still gets its row
        if why == "bye" and self.receivers:
            # RTP sent just before the BYE may still sit in the sockets: let it in (the 200 to
            # the BYE is out already), then cut at the moment of the BYE
            await asyncio.sleep(JITTER)
        if not was_pending and not self.paused and self.begun:
            self.move_audio(int(at * self.rate))
        stats = []
        for i, rx in enumerate(self.receivers):
            st = rx.final_stats()
            stats.append({"label": self.offer.recorded()[i][1].label if i < len(self.offer.recorded()) else "",
                          "channel": ("left", "right")[i] if i < 2 else None,
                          "codec": st["codecs"][0] if st["codecs"] else "", **st})
            rx.close()
        received = sum(st["received"] for st in stats)
        decoded = any(st["codecs"] for st in stats)
        peak = max((st["peak"] for st in stats), default=0)
        live = at - self.paused_seconds - (at - self.paused_at if self.paused_at is not None else 0.0)
        suspect = audio_verdict(stats, live)
        if not suspect and received and not decoded:
            suspect = f"{received} RTP packets arrived but none in a negotiated payload type"
        elif not suspect and received and peak <= SILENCE and at > 1.0:
            suspect = f"audio is all silence although {received} RTP packets arrived"
        for e in self.timeline:
            if e["to"] is None:
                e["to"] = round(at, 3)
        if not self.begun:
            return None
        loop = asyncio.get_running_loop()
        events = self.metadata.events
        # Plain On Demand (R-USR-2): kept only if the user pressed Record
        discard = delete or (any(e.get("provisional") for e in events) and not any(e.get("kept") for e in events))

        def close():
            if self.writer is None:
                return                               # begin failed (logged)
            try:
                if discard:
                    self.writer.finish(at_seconds=at)
                    self.host.store.delete(self.writer.id)
                    return
                self.writer.finish(at_seconds=at, ended_by=why, stream_stats=stats,
                                   suspect=int(bool(suspect)), suspect_reason=suspect,
                                   participants_timeline=self.timeline,
                                   truncated=bool(self.store_failed))
            except Exception as exc:   # noqa: BLE001 - StorageFailure: the store closes it later
                self.host.out(f"finishing {self.invite.call_id} failed: {type(exc).__name__}: {exc}")
        await loop.run_in_executor(self.lane, close)
        return Closed(received, sum(st["lost"] for st in stats), discard, suspect)
