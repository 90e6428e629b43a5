"""SRTP with SDES keys (RFC 4568) for the recorder's streams, on libsrtp through pylibsrtp (a
maintained binding: no hand-written crypto). An SRC that offers `a=crypto` (RTP/SAVP, or RTP/AVP
with crypto as pjsua's "optional" SRTP does) gets an answer with the recorder's own key for the
same suite, and its packets are unprotected before the receiver reads them.

Only the AES_CM_128_HMAC_SHA1_80/32 suites (what SIP SRCs, SBCs and pjsua offer first) are taken;
key lifetime and MKI parameters after the key are accepted and ignored (one master key).
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import pylibsrtp

SUITES = {"AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
          "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}
KEY_LEN = 30                    # 16-byte master key + 14-byte master salt


@dataclass(frozen=True)
class Crypto:
    tag: str
    suite: str
    key: bytes                  # master key || salt

    @property
    def attribute(self) -> str:
        """The a= value (without 'crypto:')."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def offered(attributes: list[str]) -> Crypto | None:
    """The first usable `a=crypto` of an m-line (attributes as the SDP toolkit keeps them)."""
    for attr in attributes:
        if not attr.lower().startswith("crypto:"):
            continue
        parts = attr[len("crypto:"):].split()
        if len(parts) < 3 or parts[1] not in SUITES or not parts[2].startswith("inline:"):
            continue
        try:
            key = base64.b64decode(parts[2][len("inline:"):].split("|", 1)[0], validate=True)
        except ValueError:
            continue
        if len(key) == KEY_LEN:
            return Crypto(parts[0], parts[1], key)
    return None


class Inbound:
    """One stream's SRTP receive context: the SRC's key in, our key in the answer."""

    def __init__(self, theirs: Crypto):
        self.theirs = theirs
        self.ours = Crypto(theirs.tag, theirs.suite, os.urandom(KEY_LEN))
        self._session = pylibsrtp.Session(pylibsrtp.Policy(
            key=theirs.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=SUITES[theirs.suite]))

    def unprotect(self, data: bytes) -> bytes | None:
        """Plain RTP or RTCP, or None when authentication fails (a replay, a wrong key)."""
        rtcp = len(data) > 1 and 72 <= (data[1] & 0x7F) <= 76
        try:
            return self._session.unprotect_rtcp(data) if rtcp else self._session.unprotect(data)
        except pylibsrtp.Error:
            return None
