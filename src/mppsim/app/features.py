"""The org file's contact-centre features: hunt groups, call queues and auto attendants.

Pure Python, like app/org.py, whose parser calls `parse_features` once users, virtual lines
and PSTN parties are known (members and targets refer to them). A feature is one agent
process of kind "feature" (phone/contact_centre.py plays the network for it); its line's
number is its extension, or its E.164 number when it has no extension.

The format is documented in docs/org-file.md ("Hunt groups, call queues and auto attendants").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mppsim.rules import schedule
from mppsim.rules.schedule import BusinessHours

from .org_values import DEFAULT_LANGUAGE, E164_RE, LANGUAGES

# org.py's _Parser (its error list and field readers): not imported, since org imports this module
_Parser = Any

KINDS = ("hunt_group", "call_queue", "auto_attendant")
SECTIONS = {"hunt_groups": "hunt_group", "call_queues": "call_queue", "auto_attendants": "auto_attendant"}
# Webex Calling's routing policies (Control Hub: Calling > Features > Hunt group / Call queue)
POLICIES = ("circular", "regular", "simultaneous", "uniform", "weighted")
NO_ANSWER_ACTIONS = ("busy", "transfer", "voicemail")
MENU_ACTIONS = ("transfer", "operator", "extension_dial", "repeat", "exit")
MENU_KEYS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#")
WAITING_AUDIO = ("music", "tone")
# One ring cycle of an MPP (North America cadence: 2 s on, 4 s off): "advance after N rings".
RING_SECONDS = 6.0
DEFAULT_ADVANCE_RINGS = 3
# pjsua2 holds at most 4 calls per process (docs/decisions.md): a feature's agent serves its
# callers and the members it rings at once from those 4, so a queue holds at most 3 callers and
# a feature rings at most 3 members at once.
MAX_FEATURE_CALLS = 4
MAX_QUEUE_SIZE = MAX_FEATURE_CALLS - 1
MAX_SIMULTANEOUS = MAX_FEATURE_CALLS - 1

_COMMON_KEYS = ("id", "name", "extension", "number", "location", "language")
_HUNT_KEYS = _COMMON_KEYS + ("policy", "members", "advance_after_rings", "advance_after_seconds", "no_answer")
_QUEUE_KEYS = _COMMON_KEYS + ("policy", "agents", "advance_after_rings", "advance_after_seconds",
                              "welcome", "comfort_every", "waiting", "size", "overflow")
_AA_KEYS = _COMMON_KEYS + ("menu", "business_hours", "after_hours_menu")
_MEMBER_KEYS = ("line", "weight")
_ACTION_KEYS = ("action", "to")


@dataclass(frozen=True)
class Member:
    line: str          # user id or virtual line id
    extension: str     # the line's extension (what the feature rings)
    weight: int = 0    # weighted policy: percent of the calls (the weights add up to 100)


@dataclass(frozen=True)
class Action:
    """What happens: a menu key's action, or a hunt group's no-answer / a queue's overflow."""
    action: str
    to: str | None = None        # as written (an id, extension or number)
    target: str | None = None    # the extension or E.164 number it reaches


@dataclass(frozen=True)
class Feature:
    kind: str                    # hunt_group | call_queue | auto_attendant
    id: str
    name: str
    extension: str | None
    number: str | None           # E.164 with '+'
    location: str
    language: str                # R-CMP-5: the feature's announcement language
    policy: str = "regular"
    members: tuple[Member, ...] = ()          # hunt group members, call queue agents
    advance_rings: int | None = DEFAULT_ADVANCE_RINGS
    advance_seconds: float | None = None      # instead of rings, when the file says so
    no_answer: Action = Action("busy")        # hunt group: nobody answered
    welcome: bool = True                      # call queue: welcome message first
    comfort_every: float | None = None        # call queue: comfort message period (seconds)
    waiting: str = "music"                    # call queue: music or a tone while waiting
    size: int = MAX_QUEUE_SIZE                # call queue: callers it holds
    overflow: Action = Action("busy")         # call queue: a caller beyond size
    menu: tuple[tuple[str, Action], ...] = field(default=())   # auto attendant: key -> action
    business_hours: BusinessHours | None = None   # auto attendant: when `menu` applies (None: always)
    after_hours_menu: tuple[tuple[str, Action], ...] = field(default=())   # outside business_hours

    @property
    def dial(self) -> str:
        """The number the feature's line answers to (its extension, else its E.164 number)."""
        return self.extension or self.number or ""

    @property
    def advance_after(self) -> float:
        """Seconds one member rings before the next one is tried."""
        if self.advance_seconds is not None:
            return self.advance_seconds
        return (self.advance_rings or DEFAULT_ADVANCE_RINGS) * RING_SECONDS

    def config(self) -> dict[str, Any]:
        """What the feature's agent needs (JSON): phone/contact_centre.py reads it."""
        return {
            "kind": self.kind, "id": self.id, "name": self.name, "extension": self.extension,
            "number": self.number, "language": self.language, "policy": self.policy,
            "members": [{"line": m.line, "extension": m.extension, "weight": m.weight} for m in self.members],
            "advance_after": self.advance_after,
            "no_answer": {"action": self.no_answer.action, "target": self.no_answer.target},
            "welcome": self.welcome, "comfort_every": self.comfort_every, "waiting": self.waiting,
            "size": self.size, "overflow": {"action": self.overflow.action, "target": self.overflow.target},
            "menu": {k: {"action": a.action, "target": a.target} for k, a in self.menu},
            "business_hours": self.business_hours.to_dict() if self.business_hours else None,
            "after_hours_menu": {k: {"action": a.action, "target": a.target} for k, a in self.after_hours_menu},
        }


def _action_dict(a: Action) -> dict[str, Any]:
    return {"action": a.action, "to": a.to} if a.to is not None else {"action": a.action}


def features_to_dict(features: tuple[Feature, ...]) -> dict[str, list]:
    """The features in the file format (sections only when they have entries)."""
    out: dict[str, list] = {}
    for section, kind in SECTIONS.items():
        items = []
        for f in features:
            if f.kind != kind:
                continue
            d: dict[str, Any] = {"id": f.id, "name": f.name}
            if f.extension is not None:
                d["extension"] = f.extension
            if f.number is not None:
                d["number"] = f.number
            d.update(location=f.location, language=f.language)
            if kind != "auto_attendant":
                d["policy"] = f.policy
                d["members" if kind == "hunt_group" else "agents"] = [
                    {"line": m.line, "weight": m.weight} if f.policy == "weighted" else m.line for m in f.members]
                if f.advance_seconds is not None:
                    d["advance_after_seconds"] = f.advance_seconds
                else:
                    d["advance_after_rings"] = f.advance_rings
            if kind == "hunt_group":
                d["no_answer"] = _action_dict(f.no_answer)
            elif kind == "call_queue":
                d.update(welcome=f.welcome, comfort_every=f.comfort_every, waiting=f.waiting, size=f.size,
                         overflow=_action_dict(f.overflow))
            else:
                d["menu"] = {k: _action_dict(a) for k, a in f.menu}
                if f.business_hours is not None:
                    d["business_hours"] = f.business_hours.to_dict()
                    d["after_hours_menu"] = {k: _action_dict(a) for k, a in f.after_hours_menu}
            items.append(d)
        if items:
            out[section] = items
    return out


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else ("null" if v is None else str(v))


class _FeatureParser:
    def __init__(self, p: "_Parser", locs: dict[str, str], lines: dict[str, str], numbers: set[str],
                 ext_owner: dict[str, str]):
        self.p = p
        self.locs = locs
        self.lines = lines               # user / virtual line id -> extension
        self.numbers = numbers           # PSTN parties' numbers
        self.ext_owner = ext_owner       # extension -> path of its owner (users, virtual lines)
        self.feature_dial: dict[str, str] = {}   # feature id -> its extension or number
        self.feature_numbers: dict[str, str] = {}   # E.164 -> path

    def menu(self, menu: Any, path: str) -> tuple[tuple[str, Action], ...]:
        """An auto attendant's menu: phone key -> action, in key order."""
        p = self.p
        items: list[tuple[str, Action]] = []
        if not isinstance(menu, dict) or not menu:
            p.err(path, f"must be a mapping of keys ({' '.join(MENU_KEYS)}) to "
                  f"{{action: {' | '.join(MENU_ACTIONS)}, to: ...}}; got {_fmt(menu)}")
            return ()
        for key, act in menu.items():
            k = str(key)
            if k not in MENU_KEYS:
                p.err(f"{path}.{key}", f"not a phone key; allowed: {' '.join(MENU_KEYS)} (quote * and #)")
                continue
            a = self.action(act, f"{path}.{k}", MENU_ACTIONS, "repeat")
            if a is not None:
                items.append((k, a))
        return tuple(sorted(items, key=lambda ka: MENU_KEYS.index(ka[0])))

    def common(self, d: dict, path: str) -> tuple | None:
        p = self.p
        n = len(p.errors)
        fid = p.ident(d, path)
        if fid is not None:
            p.claim_id(fid, path, p.id_owner)
        name = p.text(d, "name", path, "display name")
        ext = None
        if "extension" in d:
            ext = p.extension(d, path)
            if ext is not None:
                p.claim_extension(ext, path, self.ext_owner)
        number = d.get("number")
        if "number" in d:
            if not isinstance(number, str) or not E164_RE.fullmatch(number):
                p.err(f"{path}.number", f'{_fmt(number)} is not an E.164 number; must be "+" then 8 to 15 '
                      'digits, first digit 1-9, e.g. "+14155550100" (write it as a quoted string)')
                number = None
            elif number in self.numbers:
                p.err(f"{path}.number", f"{number!r} is already a PSTN party's number (pstn); numbers must be unique")
                number = None
            elif number in self.feature_numbers:
                p.err(f"{path}.number", f"{number!r} is already used by {self.feature_numbers[number]}; numbers must be unique")
                number = None
            elif number[1:] in self.ext_owner:
                p.err(f"{path}.number", f"{number!r} without '+' equals the extension of "
                      f"{self.ext_owner[number[1:]]}; dialling would be ambiguous")
                number = None
            else:
                self.feature_numbers[number] = path
        if "extension" not in d and "number" not in d:
            p.err(path, 'needs an extension (2 to 8 digits, e.g. "5000") and/or a number (E.164, e.g. "+14155550100")')
        loc = p.location_ref(d, path, self.locs)
        default_lang = self.locs.get(loc, DEFAULT_LANGUAGE) if loc else DEFAULT_LANGUAGE
        lang = p.choice(d, "language", path, LANGUAGES, default_lang)
        if len(p.errors) != n:
            return None
        self.feature_dial[fid] = ext or number
        return fid, name, ext, number, loc, lang

    def members(self, d: dict, key: str, path: str, policy: str | None) -> tuple[Member, ...] | None:
        p = self.p
        kp = f"{path}.{key}"
        raw = p.seq(d.get(key), kp, "user or virtual line id", True)
        if not raw:
            return None
        out: list[Member] = []
        seen: dict[str, int] = {}
        ok = True
        for j, item in enumerate(raw):
            ip = f"{kp}[{j}]"
            weight = 0
            if isinstance(item, dict):
                m = p.mapping(item, ip, _MEMBER_KEYS)
                if m is None:
                    ok = False
                    continue
                line = m.get("line")
                w = m.get("weight", 0)
                if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
                    p.err(f"{ip}.weight", f"{_fmt(w)} is not allowed; must be a whole percent from 0 to 100")
                    ok = False
                else:
                    weight = w
            else:
                line = item
            if not isinstance(line, str) or line not in self.lines:
                p.err(ip if not isinstance(item, dict) else f"{ip}.line",
                      f"{_fmt(line)} is not a user or virtual line; users and virtual lines: "
                      f"{', '.join(self.lines) or '(none)'}")
                ok = False
                continue
            if line in seen:
                p.err(ip, f"{line!r} is already a member at {kp}[{seen[line]}]; each line once")
                ok = False
                continue
            seen[line] = j
            out.append(Member(line, self.lines[line], weight))
        if not ok:
            return None
        if policy == "weighted" and sum(m.weight for m in out) != 100:
            p.err(kp, f"weights add up to {sum(m.weight for m in out)}; the weighted policy needs them to add "
                  "up to 100 (write each as {line: <id>, weight: <percent>})")
            return None
        if policy == "simultaneous" and len(out) > MAX_SIMULTANEOUS:
            p.err(kp, f"{len(out)} members; the simultaneous policy rings at most {MAX_SIMULTANEOUS} at once "
                  f"(one agent process holds {MAX_FEATURE_CALLS} calls: the caller's and the members')")
            return None
        return tuple(out)

    def advance(self, d: dict, path: str) -> tuple[int | None, float | None]:
        p = self.p
        if "advance_after_rings" in d and "advance_after_seconds" in d:
            p.err(f"{path}.advance_after_seconds", "give advance_after_rings or advance_after_seconds, not both")
            return DEFAULT_ADVANCE_RINGS, None
        if "advance_after_seconds" in d:
            v = d["advance_after_seconds"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v <= 120:
                p.err(f"{path}.advance_after_seconds", f"{_fmt(v)} is not allowed; must be a number of seconds from 1 to 120")
                return DEFAULT_ADVANCE_RINGS, None
            return None, float(v)
        v = d.get("advance_after_rings", DEFAULT_ADVANCE_RINGS)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 20:
            p.err(f"{path}.advance_after_rings", f"{_fmt(v)} is not allowed; must be a whole number of rings from 1 to 20 "
                  f"(one ring = {RING_SECONDS:g} s)")
            return DEFAULT_ADVANCE_RINGS, None
        return v, None

    def action(self, raw: Any, path: str, allowed: tuple[str, ...], default: str) -> Action | None:
        p = self.p
        if raw is None:
            return Action(default)
        d = p.mapping(raw, path, _ACTION_KEYS)
        if d is None:
            return None
        if "action" not in d:
            p.err(f"{path}.action", f"missing; required; allowed: {', '.join(allowed)}")
            return None
        act = p.choice(d, "action", path, allowed, default)
        if act is None:
            return None
        to = d.get("to")
        needs_to = act in ("transfer", "operator")
        if needs_to and to is None:
            p.err(f"{path}.to", f"missing; required for action {act!r} (a user, virtual line or feature id, "
                  "an extension or an E.164 number of the org)")
            return None
        if not needs_to and to is not None:
            p.err(f"{path}.to", f"not allowed for action {act!r}; only transfer and operator have a target")
            return None
        return Action(act, None if to is None else str(to))

    def resolve_target(self, a: Action, path: str) -> Action | None:
        if a.to is None:
            return a
        to = a.to
        if to in self.lines:
            return Action(a.action, to, self.lines[to])
        if to in self.feature_dial:
            return Action(a.action, to, self.feature_dial[to])
        dialable = set(self.lines.values()) | set(self.feature_dial.values()) | self.numbers
        dialable |= set(self.feature_numbers)
        if to in dialable:
            return Action(a.action, to, to)
        if "+" + to in self.numbers or "+" + to in self.feature_numbers:
            return Action(a.action, to, "+" + to)
        self.p.err(f"{path}.to", f"{_fmt(to)} reaches nobody in the org; give a user, virtual line or feature "
                   "id, an extension or a PSTN number of the file")
        return None


def parse_features(p: "_Parser", data: dict, locs: dict[str, str], lines: dict[str, str],
                   numbers: set[str], ext_owner: dict[str, str],
                   loc_timezones: dict[str, str] | None = None) -> list[Feature]:
    """Validate the three feature sections; errors go to the org parser `p`."""
    loc_timezones = loc_timezones or {}
    fp = _FeatureParser(p, locs, lines, numbers, ext_owner)
    pending: list[tuple[str, dict, Feature]] = []   # targets resolved once every feature is known
    for section, kind in SECTIONS.items():
        keys = {"hunt_group": _HUNT_KEYS, "call_queue": _QUEUE_KEYS, "auto_attendant": _AA_KEYS}[kind]
        for i, raw in enumerate(p.seq(data.get(section), section, kind.replace("_", " "), False)):
            path = f"{section}[{i}]"
            d = p.mapping(raw, path, keys)
            if d is None:
                continue
            n = len(p.errors)
            common = fp.common(d, path)
            kw: dict[str, Any] = {}
            if kind in ("hunt_group", "call_queue"):
                policy = p.choice(d, "policy", path, POLICIES, "regular")
                kw["policy"] = policy or "regular"
                members = fp.members(d, "members" if kind == "hunt_group" else "agents", path, policy)
                kw["members"] = members or ()
                kw["advance_rings"], kw["advance_seconds"] = fp.advance(d, path)
            if kind == "hunt_group":
                kw["no_answer"] = fp.action(d.get("no_answer"), f"{path}.no_answer", NO_ANSWER_ACTIONS, "busy")
            elif kind == "call_queue":
                welcome = d.get("welcome", True)
                if not isinstance(welcome, bool):
                    p.err(f"{path}.welcome", f"{_fmt(welcome)} is not allowed; allowed: true, false")
                kw["welcome"] = welcome is True
                ce = d.get("comfort_every")
                if ce is not None and (isinstance(ce, bool) or not isinstance(ce, (int, float)) or not 3 <= ce <= 600):
                    p.err(f"{path}.comfort_every", f"{_fmt(ce)} is not allowed; must be seconds from 3 to 600 "
                          "(or null: no comfort message)")
                    ce = None
                kw["comfort_every"] = None if ce is None else float(ce)
                kw["waiting"] = p.choice(d, "waiting", path, WAITING_AUDIO, "music") or "music"
                size = d.get("size", MAX_QUEUE_SIZE)
                if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_QUEUE_SIZE:
                    p.err(f"{path}.size", f"{_fmt(size)} is not allowed; must be 1 to {MAX_QUEUE_SIZE} callers "
                          f"(one agent process holds {MAX_FEATURE_CALLS} calls, one of them to an agent)")
                    size = MAX_QUEUE_SIZE
                kw["size"] = size
                kw["overflow"] = fp.action(d.get("overflow"), f"{path}.overflow", NO_ANSWER_ACTIONS, "busy")
            elif kind == "auto_attendant":
                kw["menu"] = fp.menu(d.get("menu"), f"{path}.menu")
                if "business_hours" in d or "after_hours_menu" in d:
                    if "business_hours" not in d or "after_hours_menu" not in d:
                        missing = "business_hours" if "business_hours" not in d else "after_hours_menu"
                        p.err(f"{path}.{missing}", "missing; business_hours and after_hours_menu go together "
                              "(without them the menu applies at all hours)")
                    else:
                        loc = d.get("location")
                        hours, errors = schedule.parse(d["business_hours"], f"{path}.business_hours",
                                                       loc_timezones.get(loc, "UTC") if isinstance(loc, str)
                                                       else "UTC", schedule.known_timezones())
                        for e in errors:
                            field_path, _, why = e.partition(": ")
                            p.err(field_path, why)
                        kw["business_hours"] = hours
                        kw["after_hours_menu"] = fp.menu(d["after_hours_menu"], f"{path}.after_hours_menu")
            if common is None or len(p.errors) != n:
                continue
            fid, name, ext, number, loc, lang = common
            pending.append((path, d, Feature(kind, fid, name, ext, number, loc, lang, **kw)))
    out: list[Feature] = []
    from dataclasses import replace
    for path, _d, f in pending:
        n = len(p.errors)
        fixes: dict[str, Any] = {}
        if f.kind == "hunt_group":
            fixes["no_answer"] = fp.resolve_target(f.no_answer, f"{path}.no_answer")
        elif f.kind == "call_queue":
            fixes["overflow"] = fp.resolve_target(f.overflow, f"{path}.overflow")
        else:
            for name in ("menu", "after_hours_menu"):
                fixes[name] = tuple((k, fp.resolve_target(a, f"{path}.{name}.{k}")) for k, a in getattr(f, name))
        if len(p.errors) == n:
            out.append(replace(f, **fixes))
    return out
