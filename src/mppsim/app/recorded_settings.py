"""The click recorder's `set` steps: what brings a replay's recording settings to the live ones.

The recorder keeps a second SettingsStore, built from the org file as `mppsim run` builds its own,
and applies to it every `set` step it writes. After each change in the live store (Control Hub's
Save, an API client) it writes the steps that make the two equal again, level by level:
users and virtual lines (`set: {user|line, callRecording}`), the organisation
(`set: {org: true, recording}`) and each location (`set: {location, recording}`). Because every
step is applied to that copy before it is written, a step the replay would refuse is never
written, and what still differs afterwards is reported as a note instead of silently lost.
"""
from __future__ import annotations

from typing import Any

from mppsim.rules import providers as P
from mppsim.rules.settings import SettingsError, SettingsStore

READ_ONLY = ("serviceProvider", "externalGroup", "externalIdentifier")


def settings_diff(before: dict, after: dict) -> dict:
    """The fields of `after` that differ from `before` (nested), read-only ones left out."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        if key in READ_ONLY:
            continue
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            sub = settings_diff(old, value)
            if sub:
                out[key] = sub
        elif value != old:
            out[key] = value
    return out


def set_patch(before: dict, after: dict) -> dict:
    """What a `set` step sends to go from `before` to `after` (R-USR-1: off sends only enabled)."""
    if not after.get("enabled", True):
        return {"enabled": False}
    if not before.get("enabled", True):
        return {k: v for k, v in after.items() if k not in READ_ONLY}
    return settings_diff(before, after)


def accounts_patch(before: dict, after: dict) -> dict:
    """Provider accounts as the store merges them: per provider, administrators whole, each
    line's account whole; null deletes a line's account or a provider's block."""
    out: dict[str, Any] = {prov: None for prov in before if prov not in after}
    for prov, acc in after.items():
        old = before.get(prov) or {"administrators": [], "users": {}}
        if acc == old:
            continue
        entry: dict[str, Any] = {}
        if acc.get("administrators", []) != old.get("administrators", []):
            entry["administrators"] = list(acc.get("administrators", []))
        users, old_users = acc.get("users", {}), old.get("users", {})
        changed = {lid: a for lid, a in users.items() if old_users.get(lid) != a}
        changed.update({lid: None for lid in old_users if lid not in users})
        if changed:
            entry["users"] = changed
        out[prov] = entry
    return out


def org_patch(before: dict, after: dict) -> dict:
    """What `set: {org: true, recording: ...}` sends to go from `before` to `after`
    (store.get_org() shapes: the org file's organisation.recording keys)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if value == old:
            continue
        if key == "accounts":
            out[key] = accounts_patch(old or {}, value)
        elif key == "recorders":
            out[key] = {**value, **{prov: None for prov in (old or {}) if prov not in value}}
        elif isinstance(value, dict) and isinstance(old, dict):
            out[key] = settings_diff(old, value)
        else:
            out[key] = value
    if out.get("provider") == P.NO_PROVIDER:
        out["confirmOff"] = True        # R-ORG-2: the person confirmed it in Control Hub's dialog
    return out


def location_patch(before: dict, after: dict) -> dict:
    """What `set: {location: ..., recording: ...}` sends (provider, compliance, failureBehavior)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if value == old:
            continue
        out[key] = settings_diff(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return out


class SettingsSteps:
    """The `set` steps of a recording session (see the module docstring)."""

    def __init__(self, live: SettingsStore, org, lines: list) -> None:
        self.live = live
        self.replay = SettingsStore.from_org(org)       # what the replay has after the steps so far
        self.lines = lines                              # Party objects of users and virtual lines
        self.locations = [loc.id for loc in org.locations]

    def _levels(self):
        """(step key, id, read, patch, apply) per level; lines first, so that accounts a line's
        change creates by itself (R-PRV-6) are not written again as an organisation change."""
        for p in self.lines:
            yield ("user" if p.kind == "user" else "line", p.id, "callRecording",
                   lambda s, lid=p.id: s.get_person(lid), set_patch,
                   lambda patch, lid=p.id: self.replay.put_person(lid, patch))
        yield ("org", True, "recording", lambda s: s.get_org(), org_patch,
               lambda patch: self.replay.set_org(patch))
        for lid in self.locations:
            yield ("location", lid, "recording", lambda s, lid=lid: s.get_location(lid), location_patch,
                   lambda patch, lid=lid: self.replay.set_location(lid, patch))

    def steps(self) -> tuple[list[dict], list[str]]:
        """The `set` steps that make the replay's settings equal the live ones (already applied
        to the replay's copy), and notes on what could not be made equal."""
        out: list[dict] = []
        refused: dict[str, str] = {}
        for _ in range(3):          # a level refused now may pass once another level changed
            progress = False
            for key, ident, field, read, make_patch, apply in self._levels():
                before, after = read(self.replay), read(self.live)
                patch = make_patch(before, after)
                if not patch:
                    continue
                try:
                    apply(patch)
                except SettingsError as exc:
                    refused[f"{key} {ident}"] = str(exc)
                    continue
                refused.pop(f"{key} {ident}", None)
                out.append({"set": {key: ident, field: patch}})
                progress = True
            if not progress:
                break
        notes = [f"{what} settings could not be written as set steps ({why.splitlines()[0]}): "
                 "the replay runs with different ones" for what, why in refused.items()]
        for key, ident, _field, read, _patch, _apply in self._levels():
            if f"{key} {ident}" not in refused and read(self.replay) != read(self.live):
                notes.append(f"{key} {ident} settings differ in a way set steps cannot write: "
                             "the replay runs with different ones")
        return out, notes
