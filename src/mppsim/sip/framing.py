"""SIP over a stream (TCP, TLS): where one message ends (RFC 3261 §18.3), no I/O.

One message is its head up to the blank line (CRLF CRLF, or LF LF from a sloppy sender) plus
Content-Length bytes of body; CRLFs between messages are keep-alives (RFC 5626 §3.5.1). The front
door, the network SRC and the recorder each framed a stream their own way before issue 20; this
is the recorder's way, the strictest about size and the most tolerant about line ends.
"""
from __future__ import annotations

from mppsim.sip.limits import MAX_MESSAGE
from mppsim.sip.message import content_length, split_head


class MessageTooLarge(ValueError):
    """The stream holds a message larger than ``MAX_MESSAGE``: the rest of it cannot be framed.
    ``head`` is what there is of its head (at most 4096 bytes when no blank line came), so the
    receiver can still answer 513 when it identifies the request."""

    def __init__(self, head: bytes):
        super().__init__(f"message larger than {MAX_MESSAGE} bytes")
        self.head = head


def next_message(buf: bytes) -> tuple[bytes | None, bytes]:
    """(the first whole message of ``buf`` or None while it is incomplete, the rest).

    Leading CRLF keep-alives are dropped. A Content-Length that is not a number frames as 0: the
    parser then says what is wrong with the message (a 400, not a silent close).
    Raises `MessageTooLarge`.
    """
    buf = buf.lstrip(b"\r\n")
    if not buf:
        return None, b""
    split = split_head(buf)
    if split is None:
        if len(buf) > MAX_MESSAGE:
            raise MessageTooLarge(buf[:4096])
        return None, buf
    head, rest = split
    try:
        length = content_length(head) or 0
    except ValueError:
        length = 0
    total = len(buf) - len(rest) + length
    if total > MAX_MESSAGE:
        raise MessageTooLarge(head)
    if len(rest) < length:
        return None, buf
    return buf[:total], buf[total:]


def pending(buf: bytes) -> bool:
    """Whether ``buf`` holds part of a message (not only keep-alives): then a partial-message
    timeout applies rather than an idle one."""
    return bool(buf.strip(b"\r\n"))
