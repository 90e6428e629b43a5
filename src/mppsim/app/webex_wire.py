"""Webex's wire conventions, as app/webex_api.py serves them: opaque ids, the error shape, JSON
bodies of PUTs, query parameters and paging by an absolute Link header. No mppsim settings here."""
from __future__ import annotations

import base64
import re
import uuid
from typing import Any, Mapping
from urllib.parse import urlencode

from mppsim.rules import providers as P
from mppsim.rules import settings_schema as S
from mppsim.rules.settings import SettingsError

from .http_server import HttpError, Request, Response

MAX_DEFAULT = {"people": 100, "virtualLines": 100, "members": 2000, "items": 100,
               "huntGroups": 100, "queues": 100, "autoAttendants": 100}
MAX_LIMIT = 1000


# ---------------------------------------------------------------------------------------------
# Ids


class WebexIds:
    """Opaque ids in Webex's style -- base64 of ``ciscospark://us/<KIND>/<uuid>`` without padding
    -- derived deterministically from the org's name and mppsim's ids, so an id stays the same
    from run to run (docs and scripts can quote them) and maps back to mppsim's id."""

    def __init__(self, org) -> None:
        self._slug = slug(org.name)
        self._back: dict[tuple[str, str], str] = {}
        self.org = self.make("ORGANIZATION", self._slug)
        self.people = {u.id: self.make("PEOPLE", u.id) for u in org.users}
        self.locations = {loc.id: self.make("LOCATION", loc.id) for loc in org.locations}
        self.virtual_lines = {v.id: self.make("VIRTUAL_LINE", v.id) for v in org.virtual_lines}
        self.vendors = {name: self.make("RECORDING_VENDOR", name) for name in P.PROVIDERS}

    def make(self, kind: str, key: str) -> str:
        u = uuid.uuid5(uuid.NAMESPACE_URL, f"mppsim://{self._slug}/{kind}/{key}")
        wid = base64.b64encode(f"ciscospark://us/{kind}/{u}".encode()).decode().rstrip("=")
        self._back[(kind, wid)] = key
        return wid

    def lookup(self, kind: str, wid: str) -> str | None:
        """mppsim's id for a Webex id of that kind (None if unknown)."""
        return self._back.get((kind, wid))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"


def job_id() -> str:
    return base64.b64encode(f"ciscospark://us/JOB_ID/{uuid.uuid4()}".encode()).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------
# Request helpers


def bad(*problems: str, status: int = 400) -> HttpError:
    """Webex's error shape: one entry per problem, the message joins them."""
    return HttpError(status, "; ".join(problems),
                     [{"description": p, "errorCode": status * 100} for p in problems])


def refused(e: SettingsError) -> HttpError:
    """A SettingsError (the Control Hub view's rules and words) as the API's 400/404/409."""
    return bad(*e.errors, status=e.status)


def json_body(req: Request) -> dict:
    data = req.json()
    if not isinstance(data, dict):
        raise bad(f"body: {S.fmt(data)} is not allowed; must be a JSON object")
    return data


def no_nulls(d: Any) -> Any:
    """null means "not given" in the organisation and location bodies (wxc-sdk sends unset fields
    of some models as null)."""
    if isinstance(d, dict):
        return {k: no_nulls(v) for k, v in d.items() if v is not None}
    return d


def unknown_or_changed(body: Mapping, allowed: tuple[str, ...], read_only: Mapping[str, Any], path: str) -> list[str]:
    """Unknown keys and changed read-only fields of a PUT body (a GET's body written back is fine)."""
    problems = []
    for k, v in body.items():
        if k in read_only:
            if v != read_only[k]:
                problems.append(f"{path}.{k}: read-only; it is {S.fmt(read_only[k])} and cannot be changed here")
        elif k not in allowed:
            problems.append(f"{path}.{k}: unknown key; allowed: {', '.join(allowed + tuple(read_only))}")
    return problems


def bool_field(body: Mapping, key: str, path: str, problems: list[str]) -> bool | None:
    if key not in body:
        return None
    v = body[key]
    if not isinstance(v, bool):
        problems.append(f"{path}.{key}: {S.fmt(v)} is not allowed; allowed: true, false")
        return None
    return v


def int_arg(req: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = req.arg(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = None
    if v is None or v < lo or (hi is not None and v > hi):
        allowed = f"{lo}-{hi}" if hi is not None else f"{lo} or more"
        raise bad(f"{name}: {raw!r} is not allowed; allowed: a whole number {allowed}")
    return v


def bool_arg(req: Request, name: str) -> bool:
    raw = req.arg(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise bad(f"{name}: {raw!r} is not allowed; allowed: true, false")
    return raw.lower() == "true"


def page(req: Request, items: list, key: str) -> Response:
    """One page of ``items`` under ``key``; a next page is announced by an absolute
    ``Link: <URL>; rel="next"`` carrying every parameter of this request (RFC 8288), as Webex
    does -- wxc-sdk follows it without adding its own parameters again."""
    size = int_arg(req, "max", MAX_DEFAULT[key], 1, MAX_LIMIT if key != "members" else 2000)
    start = int_arg(req, "start", 0, 0, None)
    headers = {}
    if start + size < len(items):
        query = [(k, v) for k, vs in req.query.items() if k not in ("start", "max") for v in vs]
        query += [("max", str(size)), ("start", str(start + size))]
        headers["Link"] = f'<{req.base_url}{req.path}?{urlencode(query)}>; rel="next"'
    return Response(200, {key: items[start:start + size]}, headers)
