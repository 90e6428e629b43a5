"""Call recording settings: the Control Hub / public API configuration of the organisation, its
locations, people and virtual lines, with the spec's rules (docs/recording-rules.md,
sections 1-3), and the one place the app asks for a line's effective settings.

Pure Python. Settings are kept as plain dicts with the public Webex API's field names, so a
tester can paste a real configuration; rules/settings_schema.py holds the shapes and field
validators, rules/providers.py the provider profiles.

    store = SettingsStore.from_org(org)          # validates the org file's recording blocks
    store.put_person("alice", {"enabled": True, "record": "Always"})
    store.effective("alice")                     # -> mppsim.rules.effective.EffectiveSettings

Every change validates a copy of the whole state and swaps it in only when valid, so an invalid
change applies nothing; the error lists every problem with its field path.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

from mppsim.rules import broadworks as BW
from mppsim.rules.citations import cite
from mppsim.rules import providers as P
from mppsim.rules import settings_schema as S
from mppsim.rules.effective import (ALWAYS, ALWAYS_PAUSE, NEVER, NOTIFY_BEEP, NOTIFY_NONE, Compliance,
                        EffectiveSettings, Selective)



class OrgLike(Protocol):
    """What the settings need of an org: mppsim.app.org.Org is one. A protocol, not an import: the
    rules sit below the app and import nothing from it (the import contracts in pyproject.toml).
    Its locations, users and virtual lines are frozen dataclasses (``to_org`` replaces fields)."""
    @property
    def name(self) -> str: ...
    @property
    def locations(self) -> Sequence[Any]: ...
    @property
    def users(self) -> Sequence[Any]: ...
    @property
    def virtual_lines(self) -> Sequence[Any]: ...


_O = TypeVar("_O", bound=OrgLike)

__all__ = [
    "LEGAL_NOTICE", "RECORDING_LICENCES", "LineInfo", "SettingsError", "SettingsStore",
    "check_call_recording", "check_location_block", "check_org_block", "start_stop_enabled",
    "upgrade_call_recording", "validate_org",
]

upgrade_call_recording = S.upgrade_call_recording   # the org loader's way to the old-name upgrade

log = logging.getLogger(__name__)

RECORDING_LICENCES = ("Professional", "Basic")   # R-PRE-2
# R-PRE-3: shown to the administrator whenever recording is enabled for a line
LEGAL_NOTICE = ("Check the legal requirements for recording calls in your country before "
                "enabling call recording (R-PRE-3).")
# R-ORG-2: what the administrator confirms when turning recording off
CONFIRM_OFF_TEXT = "I understand that turning off call recording removes the feature for all users"
SELECTIVE_MODES = (ALWAYS, ALWAYS_PAUSE)          # R-USR-8


class SettingsError(ValueError):
    """A change (or an org file's recording blocks) is invalid; nothing was applied.
    ``errors``: every problem, each "<field path>: <problem>; allowed: ...".
    ``status``: the HTTP status the real API would answer: 409 when the only problem is a
    provider whose terms are not accepted (R-PRV-7), 404 for an unknown line, else 400."""

    def __init__(self, errors: Iterable[str], status: int = 400) -> None:
        self.errors: list[str] = list(errors)
        self.status = status
        super().__init__(cite("invalid recording settings:\n" + "\n".join(f"  - {e}" for e in self.errors), "\n  "))

    def __str__(self) -> str:
        return self.args[0]


# ---------------------------------------------------------------------------------------------
# What the settings need to know about the organisation


@dataclass(frozen=True)
class LineInfo:
    """A recordable line: a user's primary line (id = user id) or a virtual line."""
    id: str
    kind: str                    # "user" | "virtual_line"
    owner: str                   # the user whose devices show the line
    location: str
    language: str                # R-CMP-5: the line's own announcement language
    devices: tuple[str, ...]     # device types showing the line; a virtual line's one device
    licence: str | None          # users only (R-PRE-2)
    email: str = ""              # users: the org file's email (BroadWorks userID, R-USR-7)
    extension: str = ""
    country: str = "US"          # the location's country (the generated E.164 number)


@dataclass(frozen=True)
class _Context:
    slug: str                                  # R-USR-7 serviceProvider
    locations: tuple[str, ...]
    lines: Mapping[str, LineInfo]


@dataclass(frozen=True)
class _Paths:
    """How errors name fields: store paths (people.alice.callRecording.record) or org-file
    paths (users[0].callRecording.record)."""
    org: str
    locations: Mapping[str, str]
    lines: Mapping[str, str]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"


def _context(org: OrgLike) -> _Context:
    lines: dict[str, LineInfo] = {}
    country = {loc.id: loc.country for loc in org.locations}
    for u in org.users:
        lines[u.id] = LineInfo(u.id, "user", u.id, u.location, u.language,
                               tuple(d.type for d in u.devices), u.licence,
                               u.email, u.extension, country.get(u.location, "US"))
    for v in org.virtual_lines:
        lines[v.id] = LineInfo(v.id, "virtual_line", v.user, v.location, v.language, (v.device,), None,
                               "", v.extension, country.get(v.location, "US"))
    return _Context(_slug(org.name), tuple(loc.id for loc in org.locations), lines)


def _store_paths(ctx: _Context) -> _Paths:
    return _Paths("organisation.recording",
                  {lid: f"locations.{lid}.recording" for lid in ctx.locations},
                  {i.id: (f"people.{i.id}.callRecording" if i.kind == "user"
                          else f"virtualLines.{i.id}.callRecording") for i in ctx.lines.values()})


def _file_paths(org: OrgLike) -> _Paths:
    lines = {u.id: f"users[{n}].callRecording" for n, u in enumerate(org.users)}
    lines.update({v.id: f"virtual_lines[{n}].callRecording" for n, v in enumerate(org.virtual_lines)})
    return _Paths("organisation.recording",
                  {loc.id: f"locations[{n}].recording" for n, loc in enumerate(org.locations)}, lines)


def _platform(ctx: _Context, info: LineInfo) -> tuple[str, str, str]:
    """R-USR-7 "call recording platform info" = the line's BroadWorks ids, generated
    deterministically in the real formats (rules/broadworks.py): service provider
    ``WBVDW######`` from the organisation, group ``<sp>L#####`` from the location, userID
    ``user@domain``. The webex SIPREC metadata carries the same values (issue 11)."""
    return (BW.service_provider_id(ctx.slug), BW.group_id(ctx.slug, info.location),
            BW.user_id(info.id, ctx.slug, info.email))


def _legacy_platform(ctx: _Context, info: LineInfo) -> tuple[str, str, str]:
    """What mppsim generated before issue 11 (org slug, location id, line id): still accepted
    where an org file or a PUT repeats the read-only values, so older files load."""
    return ctx.slug, info.location, info.id


def _section(info: LineInfo) -> str:
    return "people" if info.kind == "user" else "virtualLines"


def _line(state: dict, info: LineInfo) -> dict:
    return state[_section(info)][info.id]


# ---------------------------------------------------------------------------------------------
# Resolution org -> location (R-LOC-1, R-CMP-1, R-ORG-3)


def _provider_at(state: dict, location: str) -> str | None:
    """The provider recording lines at ``location``; None when recording is off there."""
    org, loc = state["organisation"], state["locations"][location]
    p = org["provider"] if loc["provider"] == S.ORGANISATION else loc["provider"]
    return None if p == P.NO_PROVIDER else p


def _compliance_at(state: dict, location: str) -> dict:
    loc = state["locations"][location]["compliance"]
    return state["organisation"]["compliance"] if loc == S.ORGANISATION else loc


def _failure_behavior_at(state: dict, location: str) -> str:
    loc = state["locations"][location]["failureBehavior"]
    return state["organisation"]["failureBehavior"] if loc == S.ORGANISATION else loc


def _blocked(state: dict, ctx: _Context, info: LineInfo, provider: str) -> str | None:
    """Why recording must fail for this line although it is configured (R-PRV-6, R-USR-7):
    manual providers record a line only once the administrator created its account on the
    provider side with exactly the line's platform info."""
    if P.profile(provider).provisioning != P.MANUAL:
        return None
    account = state["organisation"]["accounts"].get(provider, {}).get("users", {}).get(info.id)
    if account is None:
        return (f"no {provider} account for {info.id}: {provider} accounts are provisioned manually "
                f"on the provider side; recording fails until the administrator creates one (R-PRV-6)")
    sp, group, ident = _platform(ctx, info)
    want = {"product": P.PRODUCT, "externalType": P.EXTERNAL_TYPE, "serviceProvider": sp,
            "externalGroup": group, "externalIdentifier": ident}
    bad = [f"{k} {S.fmt(account.get(k))} != {v!r}" for k, v in want.items() if account.get(k) != v]
    return f"{provider} account for {info.id}: {'; '.join(bad)} (R-USR-7)" if bad else None


def _effective(state: dict, ctx: _Context, line_id: str) -> EffectiveSettings:
    info = ctx.lines[line_id]
    cr = _line(state, info)
    org = state["organisation"]
    provider = _provider_at(state, info.location)
    comp = _compliance_at(state, info.location)
    enabled = cr["enabled"]
    mode = cr["record"]
    sel = cr["selectiveCallRecordingSettings"]
    notification = cr["notification"]
    return EffectiveSettings(
        line_id=info.id,
        owner=info.owner,
        kind=info.kind,
        devices=info.devices,
        enabled=enabled,
        mode=mode,
        record_voicemail=cr["recordVoicemailEnabled"],
        notification=notification["type"] if notification["enabled"] else NOTIFY_NONE,
        repeat_enabled=cr["repeat"]["enabled"],
        repeat_interval=cr["repeat"]["interval"],
        announce_internal=cr["startStopAnnouncement"]["internalCallsEnabled"],
        announce_pstn=cr["startStopAnnouncement"]["pstnCallsEnabled"],
        selective=(Selective(*(sel[k] for k in S.SELECTIVE_FLAGS))
                   if sel["enabled"] and mode in SELECTIVE_MODES else None),
        provider=provider,
        provider_tier=org["tier"] if provider == P.DUBBER else None,
        recording_blocked=_blocked(state, ctx, info, provider) if enabled and provider else None,
        failure_behavior=_failure_behavior_at(state, info.location),
        compliance=Compliance(comp["inboundPSTNCallsEnabled"], comp["outboundPSTNCallsEnabled"],
                              comp["outboundPSTNCallsDelayEnabled"], comp["delayInSeconds"],
                              comp["customAnnouncementFile"]),
        language=info.language,                        # R-CMP-5
        platform=_platform(ctx, info),
        number=BW.e164(info.extension, info.country) if info.extension else "",
        recorder=org["recorders"].get(provider) if provider else None,
    )


# ---------------------------------------------------------------------------------------------
# Applying a (partial) change to a copy of the state. Each appends errors and leaves the state
# changed only by the valid parts; the caller discards the copy if any error was found.


class _Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.conflicts: list[str] = []   # 409s (R-PRV-7)
        self.notices: list[str] = []

    def raise_if_any(self) -> None:
        if self.errors:
            only_409 = len(self.conflicts) == len(self.errors)
            raise SettingsError(self.errors, 409 if only_409 else 400)


def _apply_org(state: dict, patch: Any, path: str, confirm_off: bool, r: _Report, now: Callable[[], datetime]) -> None:
    clean = S.walk(S.null_provider(patch), S.ORG_SCHEMA, path, S.VIEW_API, r.errors)
    if clean is S.BAD:
        return
    cur = state["organisation"]
    new = copy.deepcopy(cur)
    confirmed = clean.pop("confirmOff", False) is True or confirm_off
    if "accounts" in clean:
        new["accounts"] = S.merge_accounts(cur["accounts"], clean.pop("accounts"))
    if "recorders" in clean:
        new["recorders"] = S.merge_recorders(cur["recorders"], clean.pop("recorders"))
    new = S.merge(new, clean)
    if new["provider"] == P.NO_PROVIDER and cur["provider"] != P.NO_PROVIDER and not confirmed:
        r.errors.append(f"{path}.provider: turning call recording off needs confirmation: give confirmOff: true "
                        f"(confirm_off=True) to confirm \"{CONFIRM_OFF_TEXT}\" (R-ORG-2)")
        new["provider"] = cur["provider"]
    if new["tier"] != cur["tier"]:
        state["tierChanges"].append([now().isoformat(), new["tier"]])      # R-PRV-3
    state["organisation"] = new


def _apply_location(state: dict, loc_id: str, patch: Any, path: str, r: _Report) -> None:
    clean = S.walk(S.null_provider(patch), S.LOCATION_SCHEMA, path, S.VIEW_API, r.errors)
    if clean is S.BAD:
        return
    cur = state["locations"][loc_id]
    new = dict(cur)
    if "compliance" in clean:
        c = clean.pop("compliance")
        if c == S.ORGANISATION:
            new["compliance"] = c
        else:   # location-specific: start from the defaults (off), not from the organisation's
            base = cur["compliance"] if isinstance(cur["compliance"], dict) else S.defaults(S.DEFAULT_COMPLIANCE)
            new["compliance"] = S.merge(base, c)
    new.update(clean)
    state["locations"][loc_id] = new


def _apply_line(state: dict, ctx: _Context, info: LineInfo, patch: Any, path: str, view: str, r: _Report) -> None:
    """A person's or virtual line's callRecording, partial like the API's PUT."""
    patch, deprecated = S.upgrade_call_recording(patch, path)
    r.notices += deprecated
    if isinstance(patch, dict):
        patch = dict(patch)
        expected = dict(zip(S.READ_ONLY, _platform(ctx, info)))
        legacy = dict(zip(S.READ_ONLY, _legacy_platform(ctx, info)))
        for k in [k for k in patch if k in expected]:      # in the order given
            if patch.pop(k) not in (expected[k], legacy[k]):
                r.errors.append(f"{path}.{k}: read-only (call recording platform info, R-USR-7); "
                                f"it is {expected[k]!r} and cannot be changed")
    clean = S.walk(patch, S.CALL_RECORDING_SCHEMA, path, view, r.errors)
    if clean is S.BAD:
        return
    cur = _line(state, info)
    _start_stop_switch(cur, patch if isinstance(patch, dict) else {}, clean, path, r)
    was_on = cur["enabled"]
    on = clean.get("enabled", was_on)
    if on and was_on:
        new = S.merge(cur, clean)
    else:
        # R-USR-1: enabling starts from cleared settings; a line that is (or is turned) off keeps
        # only cleared settings, so values given with it must be the defaults (or the current
        # values echoed back, as a client writing back a GET's body does)
        new = S.merge(S.defaults(S.DEFAULT_CALL_RECORDING), clean)
        if not on:
            _refuse_settings_while_off(clean, cur, path, "enabled" in clean and was_on, r)
            new = S.defaults(S.DEFAULT_CALL_RECORDING)
    new["enabled"] = on
    given = patch.get("notification") if isinstance(patch, dict) else None
    if (isinstance(given, dict) and given.get("enabled") is True and given.get("type") is None
            and new["notification"] == {"enabled": True, "type": NOTIFY_NONE} != cur["notification"]):
        new["notification"]["type"] = NOTIFY_BEEP   # the API: enabled without a type means Beep (R-USR-5)
    if on and not was_on:
        _check_enabling(state, info, path, r)
    state[_section(info)][info.id] = new


def start_stop_enabled(cr: Mapping[str, Any]) -> bool:
    """The API's ``startStopAnnouncementEnabled``: on when either switch of R-USR-4 is on."""
    return any(cr["startStopAnnouncement"].values())


def _start_stop_switch(cur: dict, raw: Mapping, clean: dict, path: str, r: _Report) -> None:
    """``startStopAnnouncementEnabled`` is derived, never stored: a value equal to the current one
    is an echo of a GET; a changed value sets both switches of ``startStopAnnouncement`` unless the
    same body changes them to something else (then it is refused)."""
    if "startStopAnnouncementEnabled" not in clean:
        return
    flag = clean.pop("startStopAnnouncementEnabled")
    if flag == start_stop_enabled(cur):
        return
    given = clean.get("startStopAnnouncement")
    merged = S.merge(cur["startStopAnnouncement"], given or {})
    if given and merged != cur["startStopAnnouncement"]:
        if any(merged.values()) != flag:
            r.errors.append(f"{path}.startStopAnnouncementEnabled: {S.fmt(flag)} contradicts "
                            f"startStopAnnouncement {merged} given in the same change; give one of them (R-USR-4)")
        return
    clean["startStopAnnouncement"] = {"internalCallsEnabled": flag, "pstnCallsEnabled": flag}


def _refuse_settings_while_off(clean: dict, cur: dict, path: str, turning_off: bool, r: _Report) -> None:
    default = S.leaves(S.DEFAULT_CALL_RECORDING)
    current = S.leaves(cur)
    for k, v in S.leaves(clean).items():
        if k != "enabled" and v != default[k] and v != current.get(k):
            why = ("turning recording off clears the line's settings" if turning_off
                   else "recording is off for this line; give enabled: true to enable it")
            r.errors.append(f"{path}.{k}: {S.fmt(v)} cannot be set with enabled: false: {why}; "
                            f"allowed: {S.fmt(default[k])} (R-USR-1)")


def _check_enabling(state: dict, info: LineInfo, path: str, r: _Report) -> None:
    """Rules checked when a line is turned on (the state rules below hold at all times)."""
    if info.kind == "virtual_line" and _provider_at(state, info.location) is None:
        r.errors.append(f"{path}.enabled: cannot enable recording on virtual line {info.id!r}: no recording "
                        f"provider at the organisation or at its location {info.location!r} (provider None); "
                        f"select a provider first (R-VL-2)")
    r.notices.append(LEGAL_NOTICE)


def _check_provider_choice(state: dict, provider: str, path: str, r: _Report) -> None:
    if provider in (S.ORGANISATION, P.NO_PROVIDER):
        return
    org = state["organisation"]
    if P.profile(provider).terms_required and provider not in org["termsAccepted"]:
        msg = f"{path}: {P.terms_refusal(provider)}"                        # R-PRV-7
        r.errors.append(msg)
        r.conflicts.append(msg)
    why = P.region_refusal(provider, org["region"])                         # R-PRV-4, R-PRV-5
    if why:
        r.errors.append(f"{path}: {why}")


def _check_state(state: dict, ctx: _Context, paths: _Paths, r: _Report) -> None:
    """Rules that must hold for the whole state after any change."""
    org = state["organisation"]
    _check_provider_choice(state, org["provider"], f"{paths.org}.provider", r)
    for lid, loc in state["locations"].items():
        _check_provider_choice(state, loc["provider"], f"{paths.locations[lid]}.provider", r)
    for prov, acc in org["accounts"].items():
        for lid in acc["users"]:
            if lid not in ctx.lines:
                r.errors.append(f"{paths.org}.accounts.{prov}.users.{lid}: {lid!r} is not a user or virtual line; "
                                f"lines: {', '.join(ctx.lines)}")
    for info in ctx.lines.values():
        cr, path = _line(state, info), paths.lines[info.id]
        if not cr["enabled"]:
            continue
        if info.kind == "user" and info.licence not in RECORDING_LICENCES:
            r.errors.append(f"{path}.enabled: cannot enable recording for {info.id!r}: licence {info.licence!r}; "
                            f"only users with a Webex Calling {' or '.join(RECORDING_LICENCES)} licence "
                            f"can be recorded (R-PRE-2)")
        if info.kind == "virtual_line" and info.devices == ("webex-app",) and cr["record"] not in (ALWAYS, NEVER):
            r.errors.append(f"{path}.record: {cr['record']!r} is not allowed on a virtual line shown in the "
                            f"Webex App ({info.owner}'s webex-app); allowed: {ALWAYS}, {NEVER} (R-VL-3)")
        if cr["selectiveCallRecordingSettings"]["enabled"] and cr["record"] not in SELECTIVE_MODES:
            r.errors.append(f"{path}.selectiveCallRecordingSettings.enabled: selective call recording applies "
                            f"only to record: {', '.join(SELECTIVE_MODES)}; record is {cr['record']!r} (R-USR-8)")


def _sync_accounts(state: dict, ctx: _Context, admin: str | None, r: _Report) -> None:
    """R-PRV-6: with Dubber, an enabled line's Dubber account is created automatically (the
    administrator who enabled it becomes a Dubber administrator); R-VL-4: a virtual line gets its
    own account even when its user is not enabled. Manual providers: remind the administrator."""
    created = False
    for info in ctx.lines.values():
        cr = _line(state, info)
        provider = _provider_at(state, info.location)
        if not cr["enabled"] or provider is None:
            continue
        users = state["organisation"]["accounts"].get(provider, {}).get("users", {})
        if provider == P.DUBBER and info.id not in users:
            acc = state["organisation"]["accounts"].setdefault(P.DUBBER, {"administrators": [], "users": {}})
            sp, group, ident = _platform(ctx, info)
            entry: dict[str, Any] = {"product": P.PRODUCT, "externalType": P.EXTERNAL_TYPE, "serviceProvider": sp,
                                     "externalGroup": group, "externalIdentifier": ident,
                                     "lineType": info.kind, "automatic": True}
            if info.kind == "virtual_line":
                entry["teamRequired"] = True
                owner_on = state["people"][info.owner]["enabled"]
                r.notices.append(f"Dubber account created for virtual line {info.id!r}"
                                 f"{'' if owner_on else f' ({info.owner} is not enabled)'}; to listen to its "
                                 f"recordings, create a team in the Dubber portal with the line as a member "
                                 f"and add listeners (R-VL-4)")
            acc["users"][info.id] = entry
            created = True
        elif P.profile(provider).provisioning == P.MANUAL and info.id not in users:
            r.notices.append(f"{info.id}: create the {provider} account on the provider side "
                             f"(External Type {P.EXTERNAL_TYPE}, platform info "
                             f"{' / '.join(_platform(ctx, info))}); recording fails until then (R-PRV-6)")
    if created and admin:
        admins = state["organisation"]["accounts"][P.DUBBER]["administrators"]
        if admin not in admins:
            admins.append(admin)


def _initial_state(ctx: _Context) -> dict:
    return {
        "organisation": S.defaults(S.DEFAULT_ORG),
        "locations": {lid: S.defaults(S.DEFAULT_LOCATION) for lid in ctx.locations},
        "people": {i.id: S.defaults(S.DEFAULT_CALL_RECORDING) for i in ctx.lines.values() if i.kind == "user"},
        "virtualLines": {i.id: S.defaults(S.DEFAULT_CALL_RECORDING)
                         for i in ctx.lines.values() if i.kind == "virtual_line"},
        "tierChanges": [],
    }


def _build(org: OrgLike, now: Callable[[], datetime]) -> tuple[_Context, dict, _Report]:
    """The state an org file describes, checked with org-file paths."""
    ctx, paths, r = _context(org), _file_paths(org), _Report()
    state = _initial_state(ctx)
    _apply_org(state, getattr(org, "recording", {}) or {}, paths.org, False, r, now)
    state["tierChanges"] = [[now().isoformat(), state["organisation"]["tier"]]]
    for loc in org.locations:
        _apply_location(state, loc.id, getattr(loc, "recording", {}) or {}, paths.locations[loc.id], r)
    lines = [(u.id, getattr(u, "call_recording", {})) for u in org.users]
    lines += [(v.id, getattr(v, "call_recording", {})) for v in org.virtual_lines]
    for lid, raw in lines:
        _apply_line(state, ctx, ctx.lines[lid], raw or {}, paths.lines[lid], S.VIEW_API, r)
    _sync_accounts(state, ctx, None, r)
    _check_state(state, ctx, paths, r)
    return ctx, state, r


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Org-file validation (app/org.py)


def check_org_block(raw: Any, path: str) -> list[str]:
    """Shape and values of ``organisation.recording`` alone (no cross-level rules)."""
    errors: list[str] = []
    S.walk(S.null_provider(raw), S.ORG_SCHEMA, path, S.VIEW_API, errors)
    return errors


def check_location_block(raw: Any, path: str) -> list[str]:
    """Shape and values of ``locations[i].recording`` alone."""
    errors: list[str] = []
    S.walk(S.null_provider(raw), S.LOCATION_SCHEMA, path, S.VIEW_API, errors)
    return errors


def check_call_recording(raw: Any, path: str, view: str = S.VIEW_API) -> list[str]:
    """Shape and values of a person's or virtual line's ``callRecording`` alone."""
    errors: list[str] = []
    if isinstance(raw, dict):
        for k in S.READ_ONLY:
            if k in raw and not isinstance(raw[k], str):
                errors.append(f"{path}.{k}: {S.fmt(raw[k])} is not allowed; read-only text (R-USR-7)")
        raw = {k: v for k, v in raw.items() if k not in S.READ_ONLY}
    S.walk(raw, S.CALL_RECORDING_SCHEMA, path, view, errors)
    return errors


def validate_org(org: OrgLike) -> list[str]:
    """Every error of the org's recording blocks, with org-file paths (users[0].callRecording...)."""
    return _build(org, _utcnow)[2].errors


# ---------------------------------------------------------------------------------------------
# The store


Subscriber = Callable[[list[str]], None]


class SettingsStore:
    """All recording settings of one organisation; the one source of truth for the policy."""

    def __init__(self, ctx: _Context, state: dict, clock: Callable[[], datetime] = _utcnow) -> None:
        self._ctx = ctx
        self._paths = _store_paths(ctx)
        self._state = state
        self._clock = clock
        self._version = 0
        self._subscribers: list[Subscriber] = []
        self._lock = threading.RLock()
        # held from a change until its subscribers ran: concurrent changes (the HTTP API serves
        # each request on its own thread) reach the agents in the order they were made, so a
        # slower push of an older state can never overwrite a newer one
        self._notify_lock = threading.RLock()
        self.notices: list[str] = []     # notices of the last successful change

    @classmethod
    def from_org(cls, org: OrgLike, clock: Callable[[], datetime] | None = None) -> "SettingsStore":
        """The settings an org file describes. Raises SettingsError (org-file paths) if invalid."""
        clock = clock or _utcnow
        ctx, state, r = _build(org, clock)
        r.raise_if_any()
        store = cls(ctx, state, clock)
        store.notices = list(dict.fromkeys(r.notices))
        return store

    # -- reading ----------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped by every successful change."""
        return self._version

    def lines(self) -> list[str]:
        """Ids of every recordable line: users, then virtual lines."""
        return list(self._ctx.lines)

    def line_info(self, line_id: str) -> LineInfo:
        return self._ctx.lines[line_id]

    def effective(self, line_id: str) -> EffectiveSettings:
        """What the per-call policy needs for ``line_id`` (KeyError if there is no such line)."""
        with self._lock:
            return _effective(self._state, self._ctx, line_id)

    def effective_all(self) -> dict[str, EffectiveSettings]:
        with self._lock:
            return {lid: _effective(self._state, self._ctx, lid) for lid in self._ctx.lines}

    def get_org(self) -> dict:
        """The organisation's recording settings (the org file's ``organisation.recording`` keys)."""
        with self._lock:
            return copy.deepcopy(self._state["organisation"])

    def get_location(self, location_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._state["locations"][location_id])

    def compliance_at(self, location_id: str) -> dict:
        """R-CMP-1: the compliance announcement in force at a location (its own or the
        organisation's), and the provider recording there (None: recording is off). What a hunt
        group, call queue or auto attendant of that location plays (R-CMP-5, issue 25)."""
        with self._lock:
            comp = _compliance_at(self._state, location_id)
            return {"inbound_pstn": bool(comp["inboundPSTNCallsEnabled"]),
                    "provider": _provider_at(self._state, location_id)}

    def get_person(self, line_id: str) -> dict:
        """GET /people/{id}/features/callRecording: a person's or virtual line's settings, with
        the read-only platform info (R-USR-7)."""
        with self._lock:
            info = self._ctx.lines[line_id]
            out = copy.deepcopy(_line(self._state, info))
        sp, group, ident = _platform(self._ctx, info)
        head = {k: out.pop(k) for k in ("enabled", "record", "recordVoicemailEnabled")}
        head["startStopAnnouncementEnabled"] = start_stop_enabled(out)     # the API's order
        head.update(notification=out.pop("notification"), repeat=out.pop("repeat"),
                    serviceProvider=sp, externalGroup=group, externalIdentifier=ident)
        return {**head, **out}

    def platform_info(self, line_id: str) -> tuple[str, str, str]:
        """R-USR-7: (serviceProvider, externalGroup, externalIdentifier)."""
        return _platform(self._ctx, self._ctx.lines[line_id])

    def export(self) -> dict:
        """The whole state as JSON-able data (a deep copy)."""
        with self._lock:
            return copy.deepcopy(self._state)

    def provider_accounts(self, customer: str | None = None) -> list[P.ProviderAccount]:
        """This organisation's provider accounts, for the partner-wide R-PRV-8 check."""
        with self._lock:
            accounts = self._state["organisation"]["accounts"]
            return [P.ProviderAccount(customer or self._ctx.slug, prov, tuple(a.get("administrators", ())))
                    for prov, a in accounts.items()]

    def retention_expiry(self, recorded_at: datetime) -> datetime | None:
        """When a recording made at ``recorded_at`` with the current provider is deleted
        (R-PRV-2, R-PRV-3, R-PRV-9), given the Dubber tier changes this store has seen."""
        with self._lock:
            provider = self._state["organisation"]["provider"]
            changes = [(datetime.fromisoformat(w), t) for w, t in self._state["tierChanges"]]
        if provider == P.NO_PROVIDER:
            return None
        tier = changes[0][1] if changes else P.DEFAULT_TIER
        for when, t in changes:
            if when <= recorded_at:
                tier = t
        return P.retention_expiry(recorded_at, tier, changes, provider)

    def to_org(self, org: _O) -> _O:
        """``org`` with its recording blocks replaced by this store's settings (only what differs
        from the defaults), e.g. to save the org file after changes in the admin UI."""
        with self._lock:
            st = copy.deepcopy(self._state)
        o = S.diff(st["organisation"], S.DEFAULT_ORG)
        if st["organisation"]["provider"] == P.NO_PROVIDER:
            o["confirmOff"] = True                                            # R-ORG-2
        for key in ("accounts", "recorders"):
            if st["organisation"][key]:
                o[key] = st["organisation"][key]
        locs = tuple(dataclasses.replace(loc, recording=S.diff(st["locations"][loc.id], S.DEFAULT_LOCATION))
                     for loc in org.locations)
        users = tuple(dataclasses.replace(u, call_recording=S.diff(st["people"][u.id], S.DEFAULT_CALL_RECORDING))
                      for u in org.users)
        vls = tuple(dataclasses.replace(v, call_recording=S.diff(st["virtualLines"][v.id], S.DEFAULT_CALL_RECORDING))
                    for v in org.virtual_lines)
        return dataclasses.replace(org, recording=o, locations=locs, users=users,  # type: ignore[type-var]
                                   virtual_lines=vls)

    # -- changing ---------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(changed_line_ids)`` after every successful change (the ids whose effective
        settings changed; possibly empty). Returns a function that unsubscribes."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def set_org(self, patch: Mapping[str, Any], *, confirm_off: bool = False) -> list[str]:
        """Partial update of the organisation's settings (keys as in the org file). Choosing the
        provider None needs ``confirm_off=True`` or ``confirmOff: true`` (R-ORG-2). Returns
        notices for the administrator."""
        return self._commit(lambda st, r: _apply_org(st, dict(patch) if isinstance(patch, Mapping) else patch,
                                                     self._paths.org, confirm_off, r, self._clock))

    def accept_terms(self, provider: str) -> tuple[str, ...]:
        """R-PRV-7: accept ``provider``'s terms of service; returns what is shared with it."""
        terms = self.get_org()["termsAccepted"]
        self.set_org({"termsAccepted": terms + ([provider] if provider not in terms else [])})
        return P.TERMS_SHARED

    def set_location(self, location_id: str, patch: Mapping[str, Any]) -> list[str]:
        """Partial update of a location's provider / compliance / failureBehavior."""
        if location_id not in self._ctx.locations:
            raise SettingsError([f"locations.{location_id}: no such location; locations: "
                                 f"{', '.join(self._ctx.locations)}"], 404)
        return self._commit(lambda st, r: _apply_location(st, location_id, patch, self._paths.locations[location_id], r))

    def put_person(self, line_id: str, patch: Mapping[str, Any], view: str = S.VIEW_API,
                   admin: str | None = None) -> list[str]:
        """PUT /people/{id}/features/callRecording for a person or virtual line: only the given
        fields change, after validation of the merged result. ``view`` = "api" (repeat interval
        10-1800 s) or "control_hub" (10-90 s), R-USR-6. ``admin``: who makes the change (becomes
        a Dubber administrator when it creates Dubber accounts, R-PRV-6). Returns notices."""
        if view not in S.VIEWS:
            raise ValueError(f"view {view!r} is not allowed; allowed: {', '.join(S.VIEWS)}")
        info = self._ctx.lines.get(line_id)
        if info is None:
            raise SettingsError([f"people.{line_id}: no such user or virtual line; lines: "
                                 f"{', '.join(self._ctx.lines)}"], 404)
        path = self._paths.lines[line_id]
        return self._commit(lambda st, r: _apply_line(st, self._ctx, info, patch, path, view, r), admin)

    def set_provider_account(self, provider: str, line_id: str, account: Mapping[str, Any] | None) -> list[str]:
        """Create, fix (replace) or delete (None) ``line_id``'s account on the provider side
        (R-PRV-6, R-USR-7): Product, External Type, Service Provider, External Group, External
        Identifier."""
        return self.set_org({"accounts": {provider: {"users": {line_id: account}}}})

    def _commit(self, apply: Callable[[dict, _Report], None], admin: str | None = None) -> list[str]:
        with self._notify_lock:
            return self._commit_and_notify(apply, admin)

    def _commit_and_notify(self, apply: Callable[[dict, _Report], None], admin: str | None) -> list[str]:
        with self._lock:
            new = copy.deepcopy(self._state)
            r = _Report()
            apply(new, r)
            _sync_accounts(new, self._ctx, admin, r)
            _check_state(new, self._ctx, self._paths, r)
            r.raise_if_any()
            before = {lid: _effective(self._state, self._ctx, lid) for lid in self._ctx.lines}
            changed = [lid for lid in self._ctx.lines if _effective(new, self._ctx, lid) != before[lid]]
            self._state = new
            self._version += 1
            self.notices = list(dict.fromkeys(r.notices))
            subscribers = list(self._subscribers)
        for fn in subscribers:     # outside the lock: a subscriber may read the store
            try:
                fn(changed)
            except Exception:      # one broken listener must not undo or hide a committed change
                log.exception("recording settings subscriber %r failed", fn)
        return self.notices
