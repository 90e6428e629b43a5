"""Shapes, defaults and field validators of the call recording settings (Webex API field names).

Pure functions over plain dicts (what YAML and JSON give): rules/settings.py builds the
rules and the store on top. A validator never raises: it appends "<path>: <problem>; allowed:
..." to an error list and returns the cleaned value, or BAD when the value is unusable, so one
pass reports every error and the valid rest can still be checked against the cross-level rules.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

from mppsim.rules import providers as P
from mppsim.rules.effective import FAILURE_BEHAVIORS, MODES, NOTIFICATION_TYPES

VIEW_API, VIEW_CONTROL_HUB = "api", "control_hub"
VIEWS = (VIEW_API, VIEW_CONTROL_HUB)
# R-USR-6: the public API accepts 10-1800 s, Control Hub offers the admin guide's 10-90 s
REPEAT_RANGE = {VIEW_API: (10, 1800), VIEW_CONTROL_HUB: (10, 90)}
VIEW_LABEL = {VIEW_API: "API", VIEW_CONTROL_HUB: "Control Hub"}
DEFAULT_REPEAT_INTERVAL = 20
DELAY_RANGE = (0, 60)                       # R-CMP-2: compliance announcement delay, seconds
ORGANISATION = "organisation"               # location value: "use organisation settings"
READ_ONLY = ("serviceProvider", "externalGroup", "externalIdentifier")   # R-USR-7 platform info
LINE_TYPES = ("user", "virtual_line")

# The announcement kinds of the API's `announcements` blocks (person, virtual line, organisation)
ANNOUNCEMENT_KINDS = ("start", "stop", "pause", "resume", "failureEndWithCall", "failureProceedWithCall")
ANNOUNCEMENT_TYPES = ("DEFAULT",)   # CUSTOM needs an announcement repository mppsim does not have
SELECTIVE_FLAGS = ("recordInboundInternalCallsEnabled", "recordInboundExternalCallsEnabled",
                   "recordOutboundInternalCallsEnabled", "recordOutboundExternalCallsEnabled")
# Field names mppsim used before it followed the API's (docs/org-file.md): accepted with a notice
DEPRECATED_SELECTIVE = {"recordInboundInternal": "recordInboundInternalCallsEnabled",
                        "recordInboundExternal": "recordInboundExternalCallsEnabled",
                        "recordOutboundInternal": "recordOutboundInternalCallsEnabled",
                        "recordOutboundExternal": "recordOutboundExternalCallsEnabled"}

# R-USR-1: the cleared settings a line starts from and returns to. Access settings default to
# the values of the public API's published example (all off).
DEFAULT_CALL_RECORDING: dict[str, Any] = {
    "enabled": False,
    "record": "Never",
    "recordVoicemailEnabled": False,
    "notification": {"enabled": False, "type": "None"},
    "repeat": {"enabled": False, "interval": DEFAULT_REPEAT_INTERVAL},
    "startStopAnnouncement": {"internalCallsEnabled": False, "pstnCallsEnabled": False},
    # mppsim's "enabled" switches the R-USR-8 filter on; the four flags are the API's names
    "selectiveCallRecordingSettings": {
        "enabled": False,
        "recordInboundInternalCallsEnabled": True,
        "recordInboundExternalCallsEnabled": True,
        "recordOutboundInternalCallsEnabled": True,
        "recordOutboundExternalCallsEnabled": True,
    },
    "callRecordingAccessSettings": {
        "viewAndPlayRecordingsEnabled": False,
        "downloadRecordingsEnabled": False,
        "deleteRecordingsEnabled": False,
        "shareRecordingsEnabled": False,
    },
    # Webex as provider (R-PRV-9): AI features of the recording; stored and reported, not simulated
    "postCallRecordingSettings": {"summaryAndActionItemsEnabled": False, "transcriptEnabled": False},
    # which announcement files play; mppsim has its built-in (DEFAULT) files only
    "announcements": {"useLocationLevelEnabled": True,
                      **{k: {"type": "DEFAULT"} for k in ANNOUNCEMENT_KINDS}},
}

DEFAULT_COMPLIANCE: dict[str, Any] = {      # R-CMP-1: off by default
    "inboundPSTNCallsEnabled": False,
    "outboundPSTNCallsEnabled": False,
    "outboundPSTNCallsDelayEnabled": False,
    "delayInSeconds": 0,
    "customAnnouncementFile": None,
}

DEFAULT_ORG: dict[str, Any] = {
    "provider": P.DEFAULT_PROVIDER,         # R-ORG-1
    "tier": P.DEFAULT_TIER,                 # R-PRV-2
    # the preselected provider's terms count as accepted unless the org file says otherwise,
    # so an org file without a recording block is ready to record (docs/decisions.md)
    "termsAccepted": [P.DEFAULT_PROVIDER],
    "failureBehavior": FAILURE_BEHAVIORS[0],  # R-ORG-3
    "region": P.DEFAULT_REGION,
    "compliance": DEFAULT_COMPLIANCE,
    # GET|PUT /telephony/config/callRecording/announcements
    "announcements": {k: {"type": "DEFAULT"} for k in ANNOUNCEMENT_KINDS},
    "accounts": {},                         # provider -> {administrators, users: {line: account}}
    "recorders": {},                        # provider -> SIPREC target URI
}

DEFAULT_LOCATION: dict[str, Any] = {        # R-LOC-1, R-CMP-1, R-ORG-3: inherit everything
    "provider": ORGANISATION,
    "compliance": ORGANISATION,
    "failureBehavior": ORGANISATION,
}


def defaults(d: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh deep copy of one of the defaults above (they must never be shared)."""
    return copy.deepcopy(dict(d))


# ---------------------------------------------------------------------------------------------
# Leaf validators: (value, path, view, errors) -> cleaned value | BAD

BAD: Any = object()
Leaf = Callable[[Any, str, str, list], Any]
Schema = Mapping[str, "Leaf | Schema"]


def fmt(v: Any) -> str:
    """A value as the error messages quote it (as app/org.py does)."""
    if isinstance(v, str):
        return repr(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def boolean(v: Any, path: str, view: str, errors: list) -> Any:
    if isinstance(v, bool):
        return v
    errors.append(f"{path}: {fmt(v)} is not allowed; allowed: true, false")
    return BAD


def one_of(allowed: tuple[str, ...], rule: str = "") -> Leaf:
    suffix = f" ({rule})" if rule else ""

    def leaf(v: Any, path: str, view: str, errors: list) -> Any:
        if isinstance(v, str) and v in allowed:
            return v
        errors.append(f"{path}: {fmt(v)} is not allowed; allowed: {', '.join(allowed)}{suffix}")
        return BAD
    return leaf


def int_range(lo: int, hi: int, unit: str, rule: str) -> Leaf:
    def leaf(v: Any, path: str, view: str, errors: list) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            errors.append(f"{path}: {fmt(v)} is not a whole number of {unit}; allowed: {lo}-{hi} ({rule})")
            return BAD
        if not lo <= v <= hi:
            errors.append(f"{path}: {v} is out of range; allowed: {lo}-{hi} {unit} ({rule})")
            return BAD
        return v
    return leaf


def repeat_interval(v: Any, path: str, view: str, errors: list) -> Any:
    """R-USR-6: the range depends on where the value comes from."""
    lo, hi = REPEAT_RANGE[view]
    where = VIEW_LABEL[view]
    if isinstance(v, bool) or not isinstance(v, int):
        errors.append(f"{path}: {fmt(v)} is not a whole number of seconds; allowed: {lo}-{hi} ({where}, R-USR-6)")
        return BAD
    if not lo <= v <= hi:
        errors.append(f"{path}: {v} is out of range; allowed: {lo}-{hi} ({where}, R-USR-6)")
        return BAD
    return v


def text(v: Any, path: str, view: str, errors: list) -> Any:
    if isinstance(v, str) and v.strip():
        return v
    errors.append(f"{path}: {fmt(v)} is not allowed; must be a non-empty string")
    return BAD


def optional_text(v: Any, path: str, view: str, errors: list) -> Any:
    return None if v is None else text(v, path, view, errors)


def walk(patch: Any, schema: Schema, path: str, view: str, errors: list) -> dict | Any:
    """Check a (partial) mapping against ``schema``; return only its valid parts, or BAD if it
    is not a mapping at all. Unknown keys are errors naming the allowed keys."""
    if not isinstance(patch, dict):
        errors.append(f"{path}: {fmt(patch)} is not allowed; must be a mapping with keys {', '.join(schema)}")
        return BAD
    out: dict[str, Any] = {}
    for k, v in patch.items():
        p = f"{path}.{k}"
        if k not in schema:
            errors.append(f"{p}: unknown key; allowed: {', '.join(schema)}")
            continue
        sub = schema[k]
        val = walk(v, sub, p, view, errors) if isinstance(sub, Mapping) else sub(v, p, view, errors)
        if val is not BAD:
            out[k] = val
    return out


def merge(base: dict, patch: Mapping) -> dict:
    """``base`` with ``patch`` laid over it, nested mappings merged key by key (a partial update
    changes only the fields it gives, as the API's PUT does). Returns a new dict."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def leaves(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'repeat.interval': 30, ...}: every leaf of a nested mapping by dotted path."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):       # an empty mapping has no leaves: it changes nothing
            out.update(leaves(v, p))
        else:
            out[p] = v
    return out


def diff(value: Mapping, default: Mapping) -> dict:
    """The parts of ``value`` that differ from ``default`` (what an org file needs to say)."""
    out: dict[str, Any] = {}
    for k, v in value.items():
        d = default.get(k, BAD)
        if isinstance(v, Mapping) and isinstance(d, Mapping):
            sub = diff(v, d)
            if sub:
                out[k] = sub
        elif v != d:
            out[k] = copy.deepcopy(v)
    return out


# ---------------------------------------------------------------------------------------------
# Schemas

_BOOLS = lambda *keys: {k: boolean for k in keys}  # noqa: E731

def notification_type(v: Any, path: str, view: str, errors: list) -> Any:
    """R-USR-5; the API's PUT sends null for "None" (its GET says "None"), wxc-sdk does so."""
    return "None" if v is None else one_of(NOTIFICATION_TYPES, "R-USR-5")(v, path, view, errors)


ANNOUNCEMENT_SCHEMA: dict[str, Any] = {
    "type": one_of(ANNOUNCEMENT_TYPES, "custom announcement files are not simulated; mppsim plays its own"),
}
ORG_ANNOUNCEMENTS_SCHEMA: dict[str, Any] = {k: ANNOUNCEMENT_SCHEMA for k in ANNOUNCEMENT_KINDS}

CALL_RECORDING_SCHEMA: dict[str, Any] = {
    "enabled": boolean,
    "record": one_of(MODES, "R-USR-2"),
    "recordVoicemailEnabled": boolean,                                           # R-USR-3
    # the API's older single switch: true when either announcement switch is on; settings.py
    # turns a change of it into both switches (R-USR-4)
    "startStopAnnouncementEnabled": boolean,
    "notification": {"enabled": boolean, "type": notification_type},
    "repeat": {"enabled": boolean, "interval": repeat_interval},                 # R-USR-6
    "startStopAnnouncement": _BOOLS("internalCallsEnabled", "pstnCallsEnabled"),  # R-USR-4
    "selectiveCallRecordingSettings": _BOOLS("enabled", *SELECTIVE_FLAGS),        # R-USR-8
    "callRecordingAccessSettings": _BOOLS(
        "viewAndPlayRecordingsEnabled", "downloadRecordingsEnabled",
        "deleteRecordingsEnabled", "shareRecordingsEnabled"),
    "postCallRecordingSettings": _BOOLS("summaryAndActionItemsEnabled", "transcriptEnabled"),
    "announcements": {"useLocationLevelEnabled": boolean, **ORG_ANNOUNCEMENTS_SCHEMA},
}


def upgrade_call_recording(raw: Any, path: str) -> tuple[Any, list[str]]:
    """``raw`` with mppsim's old field names replaced by the API's, and one deprecation notice
    per old name found. Anything else (including bad shapes) is left for the validators."""
    if not isinstance(raw, dict) or not isinstance(raw.get("selectiveCallRecordingSettings"), dict):
        return raw, []
    sel = raw["selectiveCallRecordingSettings"]
    notices: list[str] = []
    new_sel: dict[str, Any] = {}
    for k, v in sel.items():
        new = DEPRECATED_SELECTIVE.get(k)
        if new is None:
            new_sel[k] = v
            continue
        notices.append(f"{path}.selectiveCallRecordingSettings.{k}: deprecated name; write {new} "
                       f"(the Webex API's name); {k} is still read")
        if new in sel:
            continue       # the new name wins when both are given
        new_sel[new] = v
    return ({**raw, "selectiveCallRecordingSettings": new_sel} if notices else raw), notices
# read-only platform info (R-USR-7) is accepted in a PUT only unchanged; settings.py checks it
PERSON_KEYS = tuple(CALL_RECORDING_SCHEMA) + READ_ONLY

COMPLIANCE_SCHEMA: dict[str, Any] = {                                            # R-CMP-1, R-CMP-2
    **_BOOLS("inboundPSTNCallsEnabled", "outboundPSTNCallsEnabled", "outboundPSTNCallsDelayEnabled"),
    "delayInSeconds": int_range(*DELAY_RANGE, "seconds", "R-CMP-2"),
    "customAnnouncementFile": optional_text,
}


def location_compliance(v: Any, path: str, view: str, errors: list) -> Any:
    """R-CMP-1: "organisation" (use organisation settings) or location-specific values. The API's
    ``useOrgSettingsEnabled: true`` means the same as "organisation", so API output pastes in."""
    if v == ORGANISATION:
        return v
    if not isinstance(v, dict):
        errors.append(f"{path}: {fmt(v)} is not allowed; allowed: {ORGANISATION!r} or a mapping with keys "
                      f"{', '.join(COMPLIANCE_SCHEMA)} (R-CMP-1)")
        return BAD
    use_org = v.get("useOrgSettingsEnabled", False)
    if use_org is not False and boolean(use_org, f"{path}.useOrgSettingsEnabled", view, errors) is BAD:
        return BAD
    rest = {k: x for k, x in v.items() if k != "useOrgSettingsEnabled"}
    clean = walk(rest, COMPLIANCE_SCHEMA, path, view, errors)
    return ORGANISATION if use_org is True else clean


ACCOUNT_PROVIDERS = (P.DUBBER, P.IMAGICLE, P.CALLCABINET)   # Webex keeps no external accounts
ACCOUNT_SCHEMA: dict[str, Any] = {                           # R-USR-7 provider portal fields
    "product": text,
    "externalType": text,
    "serviceProvider": text,
    "externalGroup": text,
    "externalIdentifier": text,
    "lineType": one_of(LINE_TYPES),
    "automatic": boolean,          # created by the provisioning of R-PRV-6
    "teamRequired": boolean,       # R-VL-4: a virtual line's recordings are heard through a team
}
ACCOUNT_REQUIRED = ("serviceProvider", "externalGroup", "externalIdentifier")


def account_entry(v: Any, path: str, view: str, errors: list) -> Any:
    """One provider-side user account; null deletes it in a partial update."""
    if v is None:
        return None
    n = len(errors)
    clean = walk(v, ACCOUNT_SCHEMA, path, view, errors)
    if clean is BAD:
        return BAD
    for k in ACCOUNT_REQUIRED:
        if k not in v:
            errors.append(f"{path}.{k}: missing; required (the value the provider portal holds, R-USR-7)")
    if len(errors) != n:
        return BAD
    return {"product": P.PRODUCT, "externalType": P.EXTERNAL_TYPE, **clean}


def string_list(v: Any, path: str, view: str, errors: list) -> Any:
    if isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v):
        return list(dict.fromkeys(v))
    errors.append(f"{path}: {fmt(v)} is not allowed; must be a list of non-empty strings")
    return BAD


def account_users(v: Any, path: str, view: str, errors: list) -> Any:
    """{line id: account | null} of one provider."""
    if not isinstance(v, dict):
        errors.append(f"{path}: {fmt(v)} is not allowed; must be a mapping of line id -> account")
        return BAD
    out: dict[str, Any] = {}
    for lid, entry in v.items():
        e = account_entry(entry, f"{path}.{lid}", view, errors)
        if e is not BAD:
            out[lid] = e
    return out


def provider_account(v: Any, path: str, view: str, errors: list) -> Any:
    if v is None:
        return None
    return walk(v, {"administrators": string_list, "users": account_users}, path, view, errors)


def accounts(v: Any, path: str, view: str, errors: list) -> Any:
    """{provider: {administrators: [...], users: {line id: account}}}; null deletes."""
    return walk(v, {p: provider_account for p in ACCOUNT_PROVIDERS}, path, view, errors)


def recorder_uri(v: Any, path: str, view: str, errors: list) -> Any:
    if v is None or (isinstance(v, str) and v.startswith(("sip:", "sips:")) and len(v) > 5):
        return v
    errors.append(f"{path}: {fmt(v)} is not allowed; must be a SIP URI, e.g. \"sip:127.0.0.1:5080;transport=tcp\"")
    return BAD


def recorders(v: Any, path: str, view: str, errors: list) -> Any:
    return walk(v, {p: recorder_uri for p in P.PROVIDERS}, path, view, errors)


def terms_list(v: Any, path: str, view: str, errors: list) -> Any:
    if not isinstance(v, list):
        errors.append(f"{path}: {fmt(v)} is not allowed; must be a list of providers: {', '.join(P.PROVIDERS)} (R-PRV-7)")
        return BAD
    ok = [one_of(P.PROVIDERS, "R-PRV-7")(x, f"{path}[{i}]", view, errors) for i, x in enumerate(v)]
    return BAD if BAD in ok else list(dict.fromkeys(ok))


ORG_SCHEMA: dict[str, Any] = {
    "provider": one_of(P.PROVIDER_CHOICES, "R-PRV-1"),
    "confirmOff": boolean,                                   # R-ORG-2, never stored
    "tier": one_of(tuple(P.DUBBER_TIERS), "R-PRV-2"),
    "termsAccepted": terms_list,
    "failureBehavior": one_of(FAILURE_BEHAVIORS, "R-ORG-3"),
    "region": one_of(P.REGIONS),
    "compliance": COMPLIANCE_SCHEMA,
    "announcements": ORG_ANNOUNCEMENTS_SCHEMA,
    "accounts": accounts,
    "recorders": recorders,
}

LOCATION_SCHEMA: dict[str, Any] = {
    "provider": one_of((ORGANISATION,) + P.PROVIDER_CHOICES, "R-LOC-1"),
    "compliance": location_compliance,
    "failureBehavior": one_of((ORGANISATION,) + FAILURE_BEHAVIORS, "R-ORG-3"),
}


def null_provider(patch: Any) -> Any:
    """YAML ``provider: null`` / JSON null means the provider None, as ``licence: null`` does."""
    if isinstance(patch, dict) and "provider" in patch and patch["provider"] is None:
        return {**patch, "provider": P.NO_PROVIDER}
    return patch


def merge_accounts(current: dict, patch: Mapping) -> dict:
    """Provider accounts: each provider merged, each line's account replaced whole; null deletes."""
    out = copy.deepcopy(current)
    for prov, pa in patch.items():
        if pa is None:
            out.pop(prov, None)
            continue
        acc = out.setdefault(prov, {"administrators": [], "users": {}})
        if "administrators" in pa:
            acc["administrators"] = list(pa["administrators"])
        for lid, entry in pa.get("users", {}).items():
            if entry is None:
                acc["users"].pop(lid, None)
            else:
                acc["users"][lid] = copy.deepcopy(entry)
    return out


def merge_recorders(current: dict, patch: Mapping) -> dict:
    out = dict(current)
    for prov, uri in patch.items():
        if uri is None:
            out.pop(prov, None)
        else:
            out[prov] = uri
    return out
