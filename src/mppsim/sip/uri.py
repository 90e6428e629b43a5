"""SIP and tel URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1; RFC 3966): text in, text
out, no DNS (mppsim's targets are literal addresses).

Before issue 20 the user part of a URI was read five ways (front door, recorder, agent, portal,
the agent's voicemail check); they disagreed on ``sip:1002;isub=1@h``, on escapes and on a URI
without a user. This is the one reading, the front door's: the most tolerant of them.
"""
from __future__ import annotations

import re
import urllib.parse

_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>(.*)$', re.S)
# RFC 3966 §5.1.1: visual separators carry no meaning in a phone number
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


def name_addr(value: str) -> tuple[str, str, str]:
    """(display name, URI, header parameters) of a From/To/Contact/Route value. A bare URI
    (``Route: sip:x;lr``, RFC 3261 §20.10 addr-spec) is accepted: then what follows its first
    ``;`` is taken as header parameters."""
    m = _NAME_ADDR.match(value)
    if m:
        name = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
        return re.sub(r"\\(.)", r"\1", name), m.group(3).strip(), m.group(4).strip()
    uri, _, params = value.strip().partition(";")
    return "", uri.strip(), (";" + params) if params else ""


def uri_of(value: str) -> str:
    """The URI of a name-addr or addr-spec: ``'"X" <sip:a@b;p>;tag=1'`` -> ``'sip:a@b;p'``."""
    return name_addr(value)[1]


def scheme(uri: str) -> str:
    """``sip``, ``sips``, ``tel``... lower case; "" when there is none."""
    head, sep, _ = uri.strip().strip("<>").partition(":")
    return head.lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head) else ""


def user(uri: str) -> str:
    """The user part: ``sip:1002@127.0.0.1:5060;transport=tcp`` -> ``1002``.

    ``sip:``/``sips:``: escapes undone, password and user parameters (``;isub=``) dropped,
    visual separators dropped when ``;user=phone``; no ``@`` = no user (``sip:127.0.0.1`` -> "").
    ``tel:``: the number without visual separators. Another scheme: "". No scheme at all
    (``1002@h``, ``1002``): read as a sip URI without its scheme.
    """
    text = uri.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    kind = scheme(text)
    if kind:
        text = text.split(":", 1)[1]
    if kind == "tel":
        return urllib.parse.unquote(text.split(";", 1)[0]).translate(_VISUAL_SEPARATORS)
    if kind not in ("", "sip", "sips"):
        return ""
    text = text.split("?", 1)[0]
    userinfo, at, rest = text.partition("@")
    if not at:
        return text.split(";", 1)[0] if not kind else ""
    name = urllib.parse.unquote(userinfo.split(":", 1)[0]).split(";", 1)[0]
    if params(text).get("user", "").lower() == "phone":
        name = name.translate(_VISUAL_SEPARATORS)
    return name


def name_and_user(value: str) -> tuple[str, str]:
    """``'"Alice" <sip:1001@h>'`` -> ``('Alice', '1001')``; a bare URI gives ``('', user)``."""
    if not value:
        return "", ""
    display, uri, _ = name_addr(value)
    return display, user(uri)


def _hostport(uri: str) -> str:
    text = uri.strip().strip("<>")
    if scheme(text):
        text = text.split(":", 1)[1]
    text = text.split("?", 1)[0]
    if "@" in text:
        text = text.split("@", 1)[1]
    return text.split(";", 1)[0]


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """(host, port) to send to for a sip: URI; an IPv6 reference loses its brackets."""
    text = _hostport(uri)
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = text.partition(":")
    return host, int(port) if port.isdigit() else default_port


def host(uri: str) -> str:
    return host_port(uri)[0]


def port(uri: str) -> int | None:
    """The explicit port, None when the URI names none."""
    found, value = host_port(uri, -1)
    return None if value < 0 else value


def params(uri: str) -> dict[str, str]:
    """URI parameters (after the host part), names lower case; a flag parameter maps to ""."""
    text = uri.strip().strip("<>").split("?", 1)[0]
    if "@" in text:
        text = text.split("@", 1)[1]
    out: dict[str, str] = {}
    for item in text.split(";")[1:]:
        name, _, value = item.partition("=")
        if name.strip():
            out.setdefault(name.strip().lower(), value.strip())
    return out


def transport(uri: str, default: str = "udp") -> str:
    """The ``transport`` parameter, lower case (RFC 3261 §19.1.1); sips: means tls."""
    given = params(uri).get("transport", "").lower()
    if given:
        return given
    return "tls" if scheme(uri) == "sips" else default
