"""UAS dialogs and server transactions, the part of RFC 3261 §12-§17 a recorder needs.

- `Transactions` remembers the last answer per (Via branch, method) for 32 s (64*T1): a
  retransmitted request gets the same answer again and is not processed twice (§17.2).
- `Dialog` is one recording session's dialog: tags, remote target and route set (for the BYE the
  recorder sends when a session times out), CSeq order (§12.2.2: a lower CSeq is answered 500),
  and the 2xx retransmission over UDP until the ACK arrives (§13.3.1.4).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from mppsim.sip.message import Request, request
from mppsim.sip.uri import name_addr

T1, T2 = 0.5, 4.0
TRANSACTION_LIFETIME = 64 * T1


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


class Transactions:
    def __init__(self, lifetime: float = TRANSACTION_LIFETIME):
        self.lifetime = lifetime
        self._answers: dict[tuple[str, str, str], tuple[float, bytes | None]] = {}

    @staticmethod
    def key(req: Request) -> tuple[str, str, str]:
        method = "INVITE" if req.method == "ACK" else req.method
        # RFC 2543 clients have no magic cookie: then Call-ID + CSeq identify the transaction
        branch = req.branch if req.branch.startswith("z9hG4bK") else \
            f"{req.call_id}/{(req.get('cseq') or '').split(' ')[0]}"
        return branch, (req.get("via") or "").split(";")[0].strip(), method

    def seen(self, req: Request) -> tuple[bool, bytes | None]:
        """(retransmission?, last answer sent for it)."""
        entry = self._answers.get(self.key(req))
        return (entry is not None, entry[1] if entry else None)

    def begin(self, req: Request) -> None:
        self._answers[self.key(req)] = (time.monotonic(), None)

    def answered(self, req: Request, data: bytes) -> None:
        self._answers[self.key(req)] = (time.monotonic(), data)

    def expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, (t, _) in self._answers.items() if now - t > self.lifetime]:
            del self._answers[k]

    def __len__(self) -> int:
        return len(self._answers)


@dataclass
class Dialog:
    call_id: str
    remote_tag: str
    local_tag: str
    remote_from: str          # the SRC's From header value (our To when we send)
    local_to: str             # our To header value, with our tag
    remote_target: str        # the SRC's Contact URI
    route_set: list[str] = field(default_factory=list)
    remote_cseq: int = 0
    local_cseq: int = 1
    local_uri: str = ""       # what we put in Via/Contact: host:port
    transport: str = "udp"
    confirmed: bool = False   # ACK received for the initial INVITE
    ok_sent_at: float = 0.0
    ok_bytes: bytes = b""     # the 2xx to retransmit over UDP until the ACK
    next_retransmit: float = 0.0
    interval: float = T1

    @classmethod
    def from_invite(cls, req: Request, local_uri: str, transport: str) -> "Dialog":
        tag = new_tag()
        _name, target, _params = name_addr(req.get("contact") or req.get("from") or "")
        routes = [name_addr(v)[1] for v in req.values("record-route")]
        return cls(call_id=req.call_id, remote_tag=req.from_tag, local_tag=tag,
                   remote_from=req.get("from") or "", local_to=f"{req.get('to') or ''};tag={tag}",
                   remote_target=target, route_set=[f"<{r}>" for r in routes],
                   remote_cseq=req.cseq[0], local_uri=local_uri, transport=transport)

    def in_order(self, req: Request) -> bool:
        """CSeq check of an in-dialog request (ACK and CANCEL excepted); updates the CSeq."""
        num = req.cseq[0]
        if num < self.remote_cseq:
            return False
        self.remote_cseq = num
        return True

    def sent_ok(self, data: bytes, reliable: bool) -> None:
        self.ok_bytes, self.ok_sent_at = data, time.monotonic()
        self.interval = T1
        self.next_retransmit = 0.0 if reliable else self.ok_sent_at + T1

    def due_retransmit(self, now: float) -> bool:
        """True when the 2xx is to be sent again now (UDP, no ACK yet); advances the timer."""
        if self.confirmed or not self.next_retransmit or now < self.next_retransmit:
            return False
        self.interval = min(self.interval * 2, T2)
        self.next_retransmit = now + self.interval
        return True

    def ack_overdue(self, now: float) -> bool:
        return not self.confirmed and self.ok_sent_at > 0 and now - self.ok_sent_at > 64 * T1

    def bye(self, reason: str = 'SIP;cause=408;text="recording session timed out"') -> bytes:
        """A BYE from the recorder (session timeout / session-timer expiry; ``reason`` the
        Reason header of another cause: a storage failure, shutdown)."""
        self.local_cseq += 1
        proto = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[self.transport]
        headers = [("Via", f"SIP/2.0/{proto} {self.local_uri};branch={new_branch()};rport")]
        headers += [("Route", r) for r in self.route_set]
        headers += [("Max-Forwards", "70"), ("From", self.local_to), ("To", self.remote_from),
                    ("Call-ID", self.call_id), ("CSeq", f"{self.local_cseq} BYE"),
                    ("Reason", reason)]
        return request("BYE", self.remote_target or "sip:src@invalid", headers)
