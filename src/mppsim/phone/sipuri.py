"""Small helpers for SIP addresses (pure Python)."""
from __future__ import annotations

import re

_NAME_ADDR = re.compile(r'^\s*(?:"(?P<q>[^"]*)"|(?P<t>[^<"]*?))\s*<(?P<uri>[^>]*)>')


def uri_user(uri: str) -> str:
    """User part of a SIP/tel URI: 'sip:1002@127.0.0.1:5060;transport=tcp' -> '1002'."""
    uri = uri.strip().strip("<>")
    for scheme in ("sips:", "sip:", "tel:"):
        if uri.lower().startswith(scheme):
            uri = uri[len(scheme):]
            break
    user = uri.split("@", 1)[0] if "@" in uri else uri.split(";", 1)[0]
    return user.split(";", 1)[0]


def parse_name_addr(value: str) -> tuple[str, str]:
    """'"Alice" <sip:1001@h>' -> ('Alice', '1001'); a bare URI gives ('', user)."""
    if not value:
        return "", ""
    m = _NAME_ADDR.match(value)
    if m:
        name = (m.group("q") if m.group("q") is not None else m.group("t") or "").strip()
        return name, uri_user(m.group("uri"))
    return "", uri_user(value)
