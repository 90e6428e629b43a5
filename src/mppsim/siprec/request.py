"""What a SIPREC request carries, read for the recorder (recorder/srs.py): the bodies (multipart
with SDP and metadata, SDP alone, metadata alone), the display names its headers give, mppsim's
status header; and `Refusal`, the final answer with a reason and the offending element when a
request cannot be taken (issue 9: never silence, never a traceback)."""
from __future__ import annotations

import re

from mppsim.siprec import status as _status   # mppsim's own status header (issue 11)
from mppsim.siprec.metadata import Metadata
from mppsim.sip.message import Request, has_bad_bytes
from mppsim.sip.uri import name_addr, user as uri_user
from mppsim.siprec.sipmsg import MultipartError, boundary_of, metadata_part, sdp_part, split_multipart

ACCEPT = "application/sdp, application/rs-metadata+xml, application/rs-metadata, multipart/mixed"


class Refusal(Exception):
    def __init__(self, code: int, reason: str, element: str = "", headers=None):
        super().__init__(reason)
        self.code, self.reason, self.element = code, reason, element
        self.headers = headers or []


def bodies(req: Request, need_metadata: bool) -> tuple[bytes | None, str | None]:
    """(metadata bytes, SDP text) of a request body: multipart, SDP alone, metadata alone."""
    ctype = (req.get("content-type") or "").strip()
    media = ctype.split(";", 1)[0].strip().lower()
    if req.get("content-encoding"):
        raise Refusal(415, "Unsupported Media Type: Content-Encoding not accepted", "Content-Encoding",
                      headers=[("Accept-Encoding", "identity")])
    body = req.body
    if not body:
        if need_metadata:
            raise Refusal(400, "No recording metadata (expected multipart/mixed with SDP and rs-metadata)",
                          "Content-Type")
        return None, None
    if media.startswith("multipart/"):
        text = body.decode("utf-8", "surrogateescape")
        try:
            parts = split_multipart(ctype, text)
        except (MultipartError, ValueError) as exc:
            raise Refusal(400, f"Bad multipart body: {exc}", "Content-Type boundary") from None
        bad = _part_with_bad_headers(text, ctype)
        if bad:
            raise Refusal(400, f"Bad multipart body: part {bad} headers are not UTF-8", f"part {bad}")
        meta, sdp = metadata_part(parts), sdp_part(parts)
        if meta is None and need_metadata:
            raise Refusal(400, "No recording metadata part (application/rs-metadata+xml)", "multipart")
        if sdp is not None and has_bad_bytes(sdp.body):
            raise Refusal(400, "Bad SDP: not UTF-8", "application/sdp")
        return (meta.body.encode("utf-8", "surrogateescape") if meta else None,
                sdp.body if sdp is not None else None)
    if media == "application/sdp":
        if need_metadata:
            raise Refusal(400, "No recording metadata (expected multipart/mixed with SDP and rs-metadata)",
                          "Content-Type")
        text = body.decode("utf-8", "surrogateescape")
        if has_bad_bytes(text):
            raise Refusal(400, "Bad SDP: not UTF-8", "application/sdp")
        return None, text
    if media in ("application/rs-metadata+xml", "application/rs-metadata"):
        if need_metadata:
            raise Refusal(488, "No SDP in the recording session offer", "application/sdp")
        return body, None
    raise Refusal(415, f"Unsupported Media Type: {media[:60] or 'none'}", "Content-Type",
                  headers=[("Accept", ACCEPT)])


def header_names(req: Request) -> dict[str, str]:
    """Display names the headers give for URI users: From, To, P-Asserted-Identity..."""
    out: dict[str, str] = {}
    for h in ("p-asserted-identity", "from", "to", "remote-party-id"):
        for v in req.get_all(h):
            name, uri, _ = name_addr(v)
            user = uri_user(uri)
            if name and user and not has_bad_bytes(name):
                out.setdefault(user.lstrip("+"), name)
    return out


STATUS_HEADER = _status.HEADER.lower()


def merge_status(md: Metadata, req: Request, previous: Metadata | None = None) -> Metadata:
    """The metadata completed with the X-Mppsim-Status header's state, events and names."""
    if req.get(STATUS_HEADER) is None:
        return md
    try:
        return _status.merge(md, {STATUS_HEADER: req.get_all(STATUS_HEADER)}, previous=previous)
    except Exception:   # noqa: BLE001 - a bad status header is ignored, like any unknown header
        return md


def _part_with_bad_headers(text: str, ctype: str) -> int:
    """The number of the first multipart part whose header lines (up to the blank line) hold
    bytes that are not UTF-8, else 0. Such a line does not parse as a header at all, so the
    parts split_multipart returns cannot tell."""
    delim = "--" + boundary_of(ctype)
    for i, chunk in enumerate(text.split(delim)[1:], 1):
        head = re.split(r"\r?\n\r?\n", chunk, maxsplit=1)[0]
        if has_bad_bytes(head):
            return i
    return 0
