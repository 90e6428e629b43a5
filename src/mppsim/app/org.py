"""The organisation ("org") file: locations, users, virtual lines, PSTN parties, and the
contact-centre features (hunt groups, call queues, auto attendants: app/features.py).

Pure Python (no Qt, no pjsua2). ``load_org(path)`` reads and validates a YAML org file,
``parse_org(data)`` validates an already-parsed mapping. Validation collects every error
and raises one :class:`OrgError`; nothing half-built is ever returned.
The format is documented in docs/org-file.md.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, NamedTuple

import yaml

from mppsim.rules.citations import cite
from mppsim.rules.schedule import known_timezones
from .network import Network, parse_network
from .org_values import DEFAULT_LANGUAGE, E164_RE as _E164_RE, LANGUAGES

if TYPE_CHECKING:
    from .features import Feature

__all__ = [
    "ALLOWED_TOP_KEYS",
    "COUNTRIES",
    "DEFAULT_RING_TIMEOUT",
    "DEVICE_TYPES",
    "LANGUAGES",
    "LICENCES",
    "MPP_MODELS",
    "RESERVED_IDS",
    "Device",
    "Line",
    "Location",
    "Org",
    "OrgError",
    "PstnParty",
    "Target",
    "User",
    "VirtualLine",
    "load_org",
    "parse_org",
]

log = logging.getLogger("mppsim.org")

# ---------------------------------------------------------------------------------------------
# Allowed values

ALLOWED_TOP_KEYS = ("organisation", "locations", "users", "virtual_lines", "pstn", "network",
                    "hunt_groups", "call_queues", "auto_attendants")
LICENCES = ("Professional", "Basic", "None")
DEVICE_TYPES = ("mpp", "webex-app")
MPP_MODELS = (
    "6821", "6841", "6851", "6861", "6871",
    "7811", "7821", "7841", "7861", "7832",
    "8811", "8841", "8845", "8851", "8861", "8865", "8875",
)  # fmt: skip
DEFAULT_MPP_MODEL = "8865"
DEFAULT_RING_TIMEOUT = 20.0
RING_TIMEOUT_RANGE = (2, 300)
DEFAULT_COUNTRY = "US"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_LICENCE = "Professional"
# Names of the simulator's own SIP entities: a user, virtual line or feature may not take them.
RESERVED_IDS = ("pstn", "frontdoor", "voicemail", "recorder")

# ISO 3166-1 alpha-2 officially assigned codes.
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

_ORG_KEYS = ("name", "ring_timeout", "voicemail", "recording")
_LOCATION_KEYS = ("id", "name", "country", "timezone", "language", "recording")
_USER_KEYS = ("id", "name", "extension", "location", "licence", "email", "language", "devices", "callRecording")
_DEVICE_KEYS = ("type", "model")
_VLINE_KEYS = ("id", "name", "extension", "location", "language", "assigned_to", "callRecording")
_ASSIGN_KEYS = ("user", "device")
_PSTN_KEYS = ("number", "name")

_ID_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_EXT_RE = re.compile(r"[0-9]{2,8}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TZ_SHAPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")


# ---------------------------------------------------------------------------------------------
# Model


# An agent process has 4 lines at most (2 SIP transports each, 8 per pjsua process).
MAX_VIRTUAL_LINES_PER_USER = 3

class OrgError(ValueError):
    """An org file (or mapping) is invalid. ``errors`` lists every problem, each prefixed by
    the field path (``users[1].extension: ...``)."""

    def __init__(self, errors: Iterable[str], path: Path | str | None = None) -> None:
        self.errors: list[str] = list(errors)
        self.path: Path | None = Path(path) if path is not None else None
        where = f"invalid org file {self.path}" if self.path is not None else "invalid org data"
        super().__init__(cite(where + ":\n" + "\n".join(f"  - {e}" for e in self.errors), "\n  "))

    def __str__(self) -> str:  # ValueError.__str__ would do, but be explicit
        return self.args[0]


@dataclass(frozen=True)
class Location:
    id: str
    name: str
    country: str = DEFAULT_COUNTRY
    timezone: str = DEFAULT_TIMEZONE
    language: str = DEFAULT_LANGUAGE
    # call recording overrides as written in the file (docs/org-file.md); hash=False: dicts
    recording: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Device:
    type: str  # 'mpp' | 'webex-app'
    model: str | None = None  # MPP model number as text; None for webex-app


@dataclass(frozen=True)
class User:
    id: str
    name: str
    extension: str
    location: str
    licence: str  # 'Professional' | 'Basic' | 'None'
    email: str
    language: str
    devices: tuple[Device, ...]
    # Webex API callRecording settings as written in the file (rules/settings.py)
    call_recording: dict = field(default_factory=dict, hash=False)

    @property
    def has_mpp(self) -> bool:
        return any(d.type == "mpp" for d in self.devices)

    @property
    def has_webex_app(self) -> bool:
        return any(d.type == "webex-app" for d in self.devices)

    def device(self, type: str) -> Device | None:
        """The user's device of that type, or None."""
        return next((d for d in self.devices if d.type == type), None)


@dataclass(frozen=True)
class VirtualLine:
    id: str
    name: str
    extension: str
    location: str
    language: str
    user: str  # id of the user it is assigned to
    device: str  # 'mpp' | 'webex-app': the device of that user it appears on
    call_recording: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class PstnParty:
    number: str  # E.164 with '+'
    name: str


class Line(NamedTuple):
    """One line of a user: the primary line (id == user id) or a virtual line."""

    id: str
    extension: str
    name: str


@dataclass(frozen=True)
class Target:
    """What a dialled string reaches."""

    kind: Literal["user", "virtual_line", "pstn", "feature"]
    owner: str  # user id owning the line, or the E.164 number for pstn
    line: str  # line id (user id or virtual line id), or the E.164 number for pstn


@dataclass(frozen=True)
class Org:
    name: str
    ring_timeout: float
    locations: tuple[Location, ...]
    users: tuple[User, ...]
    virtual_lines: tuple[VirtualLine, ...] = ()
    pstn: tuple[PstnParty, ...] = ()
    # hunt groups, call queues and auto attendants (app/features.py), file order within each kind
    features: tuple["Feature", ...] = ()
    voicemail: bool = True   # unanswered and declined calls go to the voicemail agent
    source: Path | None = field(default=None, compare=False)
    # organisation-level call recording settings as written in the file (rules/settings.py)
    recording: dict = field(default_factory=dict, hash=False)
    # deprecation notices of the file (old field names it still accepts), also warned about
    notices: tuple[str, ...] = field(default=(), compare=False)
    # where the run lives on the network (issue 21, app/network.py): address, RTP ports, TLS CA
    network: Network = field(default_factory=Network)

    # -- look-ups ---------------------------------------------------------------------------

    def user(self, id: str) -> User:
        for u in self.users:
            if u.id == id:
                return u
        raise KeyError(id)

    def location(self, id: str) -> Location:
        for loc in self.locations:
            if loc.id == id:
                return loc
        raise KeyError(id)

    def virtual_line(self, id: str) -> VirtualLine:
        for v in self.virtual_lines:
            if v.id == id:
                return v
        raise KeyError(id)

    def pstn_party(self, number: str) -> PstnParty:
        for p in self.pstn:
            if p.number == number:
                return p
        raise KeyError(number)

    def lines_of(self, user_id: str) -> list[Line]:
        """The user's lines: primary line first (id == user id), then the virtual lines assigned
        to the user in file order. KeyError if there is no such user."""
        u = self.user(user_id)
        lines = [Line(u.id, u.extension, u.name)]
        lines += [Line(v.id, v.extension, v.name) for v in self.virtual_lines if v.user == u.id]
        return lines

    def resolve(self, dialled: str) -> Target | None:
        """What ``dialled`` reaches: an extension, an E.164 number with '+', or the same number
        without '+'. None if nothing matches."""
        s = str(dialled).strip()
        for u in self.users:
            if u.extension == s:
                return Target("user", u.id, u.id)
        for v in self.virtual_lines:
            if v.extension == s:
                return Target("virtual_line", v.user, v.id)
        number = s if s.startswith("+") else "+" + s
        for f in self.features:
            if s == f.extension or (f.number is not None and number == f.number):
                return Target("feature", f.id, f.id)
        for p in self.pstn:
            if p.number == number:
                return Target("pstn", p.number, p.number)
        return None

    def party_name(self, number_or_ext: str) -> str | None:
        """Display name of whoever ``number_or_ext`` reaches (user, virtual line or PSTN party),
        or None if it reaches nobody."""
        t = self.resolve(number_or_ext)
        if t is None:
            return None
        if t.kind == "user":
            return self.user(t.line).name
        if t.kind == "virtual_line":
            return self.virtual_line(t.line).name
        if t.kind == "feature":
            return self.feature(t.line).name
        return self.pstn_party(t.line).name

    def feature(self, id: str) -> "Feature":
        for f in self.features:
            if f.id == id:
                return f
        raise KeyError(id)

    def features_of(self, kind: str) -> list["Feature"]:
        """The features of one kind (hunt_group | call_queue | auto_attendant), in file order."""
        return [f for f in self.features if f.kind == kind]

    # -- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The org in the file format, every field explicit (defaults included).
        ``parse_org(org.to_dict()) == org``."""
        rt: float | int = int(self.ring_timeout) if self.ring_timeout.is_integer() else self.ring_timeout
        d: dict[str, Any] = {
            "organisation": {"name": self.name, "ring_timeout": rt, "voicemail": self.voicemail},
            "locations": [
                {"id": l.id, "name": l.name, "country": l.country, "timezone": l.timezone, "language": l.language}
                for l in self.locations
            ],
            "users": [
                {
                    "id": u.id,
                    "name": u.name,
                    "extension": u.extension,
                    "location": u.location,
                    "licence": u.licence,
                    "email": u.email,
                    "language": u.language,
                    "devices": [
                        {"type": dv.type, "model": dv.model} if dv.model is not None else {"type": dv.type}
                        for dv in u.devices
                    ],
                }
                for u in self.users
            ],
        }
        if self.virtual_lines:
            d["virtual_lines"] = [
                {
                    "id": v.id,
                    "name": v.name,
                    "extension": v.extension,
                    "location": v.location,
                    "language": v.language,
                    "assigned_to": {"user": v.user, "device": v.device},
                }
                for v in self.virtual_lines
            ]
        if self.pstn:
            d["pstn"] = [{"number": p.number, "name": p.name} for p in self.pstn]
        from .features import features_to_dict

        d.update(features_to_dict(self.features))
        self._add_recording(d)
        if self.network != Network():
            d["network"] = self.network.to_dict()
        return d

    def _add_recording(self, d: dict[str, Any]) -> None:
        """The call recording blocks, only where the file had (or a store wrote) some."""
        if self.recording:
            d["organisation"]["recording"] = copy.deepcopy(self.recording)
        for out, loc in zip(d["locations"], self.locations):
            if loc.recording:
                out["recording"] = copy.deepcopy(loc.recording)
        for out, u in zip(d["users"], self.users):
            if u.call_recording:
                out["callRecording"] = copy.deepcopy(u.call_recording)
        for out, v in zip(d.get("virtual_lines", []), self.virtual_lines):
            if v.call_recording:
                out["callRecording"] = copy.deepcopy(v.call_recording)


# ---------------------------------------------------------------------------------------------
# Loading


class _OrgLoader(yaml.SafeLoader):
    """yaml.SafeLoader with three fixes for hand-written org files:
    duplicate mapping keys are an error (instead of the last one silently winning);
    integers written with a leading '+' or '0' keep their text (``+14155550100``, ``0100``:
    YAML 1.1 would give 14155550100 and octal 64); and only true/false are booleans, so
    ``country: NO`` stays the string 'NO'."""


def _construct_mapping(loader: _OrgLoader, node: yaml.MappingNode):
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            dup = key in seen
            seen.add(key)
        except TypeError:  # unhashable: construct_mapping reports it
            continue
        if dup:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
    data: dict[Any, Any] = {}
    yield data
    data.update(loader.construct_mapping(node, deep=True))


def _construct_int(loader: _OrgLoader, node: yaml.ScalarNode):
    text = loader.construct_scalar(node)
    if re.fullmatch(r"\+[0-9]+|0[0-9]+", text):
        return text
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_bool(loader: _OrgLoader, node: yaml.ScalarNode):
    text = loader.construct_scalar(node)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


_OrgLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_OrgLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_OrgLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def _yaml_error_text(e: yaml.YAMLError) -> str:
    """One line: 'line L, column C: problem (context at line L, column C)', 1-based."""
    if not isinstance(e, yaml.MarkedYAMLError) or e.problem_mark is None:
        return " ".join(str(e).split())
    m = e.problem_mark
    text = f"line {m.line + 1}, column {m.column + 1}: {e.problem}"
    if e.context:
        cm = e.context_mark
        at = f" started at line {cm.line + 1}, column {cm.column + 1}" if cm is not None else ""
        text += f" ({e.context}{at})"
    return text


def load_org(path: str | Path) -> Org:
    """Read and validate an org file. Raises OrgError (naming the file) if it cannot be read,
    is not valid YAML, or is not a valid org."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        what = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise OrgError([f"cannot read file {p.expanduser().resolve()}: {what}"], p) from None
    try:
        data = yaml.load(text, Loader=_OrgLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as e:
        raise OrgError([f"YAML syntax: {_yaml_error_text(e)}"], p) from None
    return parse_org(data, source=p)


def parse_org(data: Any, source: str | Path | None = None) -> Org:
    """Validate a parsed org mapping and build the Org. Raises OrgError listing every error."""
    return _Parser(source).parse(data)


# ---------------------------------------------------------------------------------------------
# Validation


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else ("null" if v is None else str(v))


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s or "org"


class _Parser:
    def __init__(self, source: str | Path | None) -> None:
        self.source = Path(source) if source is not None else None
        self.errors: list[str] = []
        self.id_owner: dict[str, str] = {}  # user / virtual line id -> path of its owner
        self.org_recording: dict = {}
        self.org_voicemail = True
        self.notices: list[str] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    # -- generic helpers --------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping with keys {', '.join(allowed)}; got {_fmt(value)}")
            return None
        for k in value:
            if k not in allowed:
                kp = f"{path}.{k}" if path else str(k)
                self.err(kp, f"unknown key; allowed: {', '.join(allowed)}")
        return value

    def seq(self, value: Any, path: str, what: str, required: bool) -> list:
        if value is None and not required:
            return []
        if not isinstance(value, list) or (required and not value):
            need = "a list of at least one" if required else "a list of"
            self.err(path, f"must be {need} {what}; got {_fmt(value)}")
            return []
        return value

    def text(self, d: dict, key: str, path: str, what: str, default: str | None = None) -> str | None:
        """A required (default None) or optional non-blank string."""
        p = f"{path}.{key}"
        if key not in d:
            if default is None:
                self.err(p, f"missing; required ({what})")
            return default
        v = d[key]
        if not isinstance(v, str) or not v.strip():
            self.err(p, f"must be a non-empty string ({what}); got {_fmt(v)}")
            return None
        return v

    def ident(self, d: dict, path: str) -> str | None:
        p = f"{path}.id"
        if "id" not in d:
            self.err(p, "missing; required (identifier: [a-z][a-z0-9_-]{0,31})")
            return None
        v = d["id"]
        if not isinstance(v, str) or not _ID_RE.fullmatch(v):
            self.err(
                p,
                f"{_fmt(v)} is not a valid identifier; must match [a-z][a-z0-9_-]{{0,31}} "
                "(lower-case letter, then up to 31 of a-z 0-9 _ -)",
            )
            return None
        return v

    def choice(self, d: dict, key: str, path: str, allowed: tuple[str, ...], default: str) -> str | None:
        if key not in d:
            return default
        v = d[key]
        if v not in allowed or not isinstance(v, str):
            self.err(f"{path}.{key}", f"{_fmt(v)} is not allowed; allowed: {', '.join(allowed)}")
            return None
        return v

    def extension(self, d: dict, path: str) -> str | None:
        p = f"{path}.extension"
        if "extension" not in d:
            self.err(p, 'missing; required (2 to 8 digits, e.g. "1001")')
            return None
        v = d["extension"]
        s = str(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else v
        if not isinstance(s, str) or not _EXT_RE.fullmatch(s):
            self.err(p, f'{_fmt(v)} is not a valid extension; must be 2 to 8 digits, e.g. "1001"')
            return None
        return s

    def recording_block(self, d: dict, key: str, path: str, kind: str) -> dict:
        """An optional call recording block (``recording`` or ``callRecording``): its shape and
        values are checked here, the rules across levels once the whole org is built (parse)."""
        if d.get(key) is None:
            return {}
        from mppsim.rules import settings  # lazy: mppsim.rules.settings imports nothing from here

        check = {"org": settings.check_org_block, "location": settings.check_location_block,
                 "line": settings.check_call_recording}[kind]
        raw = d[key]
        if kind == "line":    # mppsim's old field names -> the Webex API's, with a notice
            raw, notices = settings.upgrade_call_recording(raw, f"{path}.{key}")
            self.notices += notices
        errs = check(raw, f"{path}.{key}")
        self.errors += errs
        return raw if isinstance(raw, dict) and not errs else {}

    # -- sections ---------------------------------------------------------------------------

    def parse(self, data: Any) -> Org:
        if not isinstance(data, dict):
            self.err("(top level)", f"must be a mapping with keys {', '.join(ALLOWED_TOP_KEYS)}; got {_fmt(data)}")
            raise OrgError(self.errors, self.source)
        self.mapping(data, "", ALLOWED_TOP_KEYS)

        org_name, ring_timeout = self.organisation(data)
        locations, loc_langs = self.locations(data)
        users, user_devices, ext_owner = self.users(data, loc_langs, org_name)
        vlines = self.virtual_lines(data, loc_langs, user_devices, ext_owner)
        pstn = self.pstn(data, ext_owner)
        from .features import parse_features

        lines = {u.id: u.extension for u in users if u is not None}
        lines.update({v.id: v.extension for v in vlines if v is not None})
        numbers = {p.number for p in pstn if p is not None}
        features = parse_features(self, data, loc_langs, lines, numbers, ext_owner,
                                  {loc.id: loc.timezone for loc in locations if loc is not None})
        network, errs = parse_network(data.get("network"))
        self.errors += errs

        if self.errors:
            raise OrgError(self.errors, self.source)
        org = Org(
            name=org_name,  # type: ignore[arg-type]
            ring_timeout=ring_timeout,  # type: ignore[arg-type]
            locations=tuple(locations),  # type: ignore[arg-type]
            users=tuple(users),  # type: ignore[arg-type]
            virtual_lines=tuple(vlines),  # type: ignore[arg-type]
            pstn=tuple(pstn),  # type: ignore[arg-type]
            features=tuple(features),
            voicemail=self.org_voicemail,
            source=self.source,
            recording=self.org_recording,
            notices=tuple(self.notices),
            network=network,
        )
        # The call recording rules across levels (licence, provider terms and region, virtual
        # line limits...) need the whole org: the same validators SettingsStore.from_org uses.
        from mppsim.rules.settings import validate_org

        self.errors += validate_org(org)
        if self.errors:
            raise OrgError(self.errors, self.source)
        where = f"{self.source}: " if self.source is not None else ""
        for notice in self.notices:   # logged: a deprecation meant for the file's author, shown as is
            log.warning("%s%s", where, notice)
        return org

    def organisation(self, data: dict) -> tuple[str | None, float | None]:
        if "organisation" not in data:
            self.err("organisation", f"missing; required (mapping with keys {', '.join(_ORG_KEYS)})")
            return None, None
        o = self.mapping(data["organisation"], "organisation", _ORG_KEYS)
        if o is None:
            return None, None
        name = self.text(o, "name", "organisation", "organisation name")
        rt: float | None = DEFAULT_RING_TIMEOUT
        if "ring_timeout" in o:
            v = o["ring_timeout"]
            lo, hi = RING_TIMEOUT_RANGE
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
                self.err("organisation.ring_timeout", f"{_fmt(v)} is not allowed; must be a number of seconds from {lo} to {hi}")
                rt = None
            else:
                rt = float(v)
        self.org_voicemail = True
        if "voicemail" in o:
            if isinstance(o["voicemail"], bool):
                self.org_voicemail = o["voicemail"]
            else:
                self.err("organisation.voicemail", f"{_fmt(o['voicemail'])} is not allowed; allowed: true, false")
        self.org_recording = self.recording_block(o, "recording", "organisation", "org")
        return name, rt

    def locations(self, data: dict) -> tuple[list[Location | None], dict[str, str]]:
        """Returns the locations and {location id: its announcement language}."""
        out: list[Location | None] = []
        known: dict[str, str] = {}
        if "locations" not in data:
            self.err("locations", "missing; required (a list of at least one location)")
            return out, known
        seen: dict[str, int] = {}
        tzs = known_timezones()
        for i, raw in enumerate(self.seq(data["locations"], "locations", "location", True)):
            path = f"locations[{i}]"
            d = self.mapping(raw, path, _LOCATION_KEYS)
            if d is None:
                out.append(None)
                continue
            n = len(self.errors)
            lid = self.ident(d, path)
            if lid is not None:
                if lid in seen:
                    self.err(f"{path}.id", f"{lid!r} is already used by locations[{seen[lid]}]; location ids must be unique")
                else:
                    seen[lid] = i
            name = self.text(d, "name", path, "location name")
            country = d.get("country", DEFAULT_COUNTRY)
            if not isinstance(country, str) or country not in COUNTRIES:
                self.err(f"{path}.country", f"{_fmt(country)} is not an ISO-3166 alpha-2 country code; use two capital letters, e.g. US, GB, PL")
            tz = d.get("timezone", DEFAULT_TIMEZONE)
            tz_ok = isinstance(tz, str) and ((tz in tzs or tz == "UTC") if tzs else bool(_TZ_SHAPE_RE.fullmatch(tz)))
            if not tz_ok:
                self.err(f"{path}.timezone", f"{_fmt(tz)} is not an IANA time zone; e.g. UTC, America/New_York, Europe/Warsaw")
            lang = self.choice(d, "language", path, LANGUAGES, DEFAULT_LANGUAGE)
            rec = self.recording_block(d, "recording", path, "location")
            if len(self.errors) == n:
                out.append(Location(lid, name, country, tz, lang, rec))  # type: ignore[arg-type]
            else:
                out.append(None)
            if lid is not None and lid not in known:
                # known even if the location has other errors: users naming it get no second error
                known[lid] = lang or DEFAULT_LANGUAGE
        return out, known

    def users(
        self, data: dict, locs: dict[str, str], org_name: str | None
    ) -> tuple[list[User | None], dict[str, set[str] | None], dict[str, str]]:
        """Returns users, {user id: device types (None if unknown)}, {extension: owner path}."""
        users: list[User | None] = []
        devices_of: dict[str, set[str] | None] = {}
        ext_owner: dict[str, str] = {}
        id_owner = self.id_owner
        emails: dict[str, str] = {}
        if "users" not in data:
            self.err("users", "missing; required (a list of at least one user)")
            return users, devices_of, ext_owner
        slug = _slug(org_name) if org_name else "org"
        for i, raw in enumerate(self.seq(data["users"], "users", "user", True)):
            path = f"users[{i}]"
            d = self.mapping(raw, path, _USER_KEYS)
            if d is None:
                users.append(None)
                continue
            n = len(self.errors)
            uid = self.ident(d, path)
            if uid is not None:
                self.claim_id(uid, path, id_owner)
            name = self.text(d, "name", path, "display name")
            ext = self.extension(d, path)
            if ext is not None:
                self.claim_extension(ext, path, ext_owner)
            loc = self.location_ref(d, path, locs)
            licence: str | None
            if "licence" in d and d["licence"] is None:
                licence = "None"
            else:
                licence = self.choice(d, "licence", path, LICENCES, DEFAULT_LICENCE)
            email = d.get("email")
            if "email" not in d:
                email = f"{uid}@{slug}.example" if uid else None
            elif not isinstance(email, str) or not _EMAIL_RE.fullmatch(email):
                self.err(f"{path}.email", f"{_fmt(email)} is not an e-mail address; e.g. alice@acme.example")
                email = None
            if email is not None:
                if email.lower() in emails:
                    self.err(f"{path}.email", f"{email!r} is already used by {emails[email.lower()]}; e-mail addresses must be unique")
                else:
                    emails[email.lower()] = path
            default_lang = locs.get(loc, DEFAULT_LANGUAGE) if loc else DEFAULT_LANGUAGE
            lang = self.choice(d, "language", path, LANGUAGES, default_lang)
            devs = self.devices(d, path)
            if uid is not None:
                devices_of.setdefault(uid, {dv.type for dv in devs} if devs is not None else None)
            cr = self.recording_block(d, "callRecording", path, "line")
            if len(self.errors) == n:
                users.append(User(uid, name, ext, loc, licence, email, lang, devs, cr))  # type: ignore[arg-type]
            else:
                users.append(None)
        return users, devices_of, ext_owner

    def devices(self, d: dict, path: str) -> tuple[Device, ...] | None:
        p = f"{path}.devices"
        if "devices" not in d:
            self.err(p, f"missing; required (a list of at least one device, type one of {', '.join(DEVICE_TYPES)})")
            return None
        out: list[Device] = []
        ok = True
        seen: dict[str, int] = {}
        items = self.seq(d["devices"], p, f"device (type one of {', '.join(DEVICE_TYPES)})", True)
        if not items:
            return None
        for j, raw in enumerate(items):
            dp = f"{p}[{j}]"
            dd = self.mapping(raw, dp, _DEVICE_KEYS)
            if dd is None:
                ok = False
                continue
            if "type" not in dd:
                self.err(f"{dp}.type", f"missing; required; allowed: {', '.join(DEVICE_TYPES)}")
                ok = False
                continue
            typ = self.choice(dd, "type", dp, DEVICE_TYPES, "")
            if typ is None:
                ok = False
                continue
            if typ in seen:
                self.err(f"{dp}.type", f"{typ!r} already given at {p}[{seen[typ]}]; at most one device of each type")
                ok = False
                continue
            seen[typ] = j
            model: str | None = None
            if typ == "mpp":
                mv = dd.get("model", DEFAULT_MPP_MODEL)
                model = str(mv) if isinstance(mv, int) and not isinstance(mv, bool) else mv
                if model not in MPP_MODELS:
                    self.err(f"{dp}.model", f"{_fmt(mv)} is not allowed; allowed: {', '.join(MPP_MODELS)}")
                    ok = False
                    continue
            elif dd.get("model") is not None:
                self.err(f"{dp}.model", "not allowed for type 'webex-app'; only mpp devices have a model")
                ok = False
                continue
            out.append(Device(typ, model))
        if not ok:
            # device types that did parse still count for virtual line checks
            return tuple(out) if out else None
        return tuple(out)

    def location_ref(self, d: dict, path: str, locs: dict[str, str]) -> str | None:
        p = f"{path}.location"
        if "location" not in d:
            self.err(p, f"missing; required (one of the location ids: {', '.join(locs) or '(none defined)'})")
            return None
        v = d["location"]
        if not isinstance(v, str) or v not in locs:
            self.err(p, f"{_fmt(v)} is not a location; defined locations: {', '.join(locs) or '(none)'}")
            return None
        return v

    def claim_id(self, uid: str, path: str, owners: dict[str, str]) -> None:
        if uid in RESERVED_IDS:
            self.err(f"{path}.id", f"{uid!r} is reserved; reserved names: {', '.join(RESERVED_IDS)}")
        elif uid in owners:
            self.err(f"{path}.id", f"{uid!r} is already used by {owners[uid]}; ids must be unique across users and virtual lines")
        else:
            owners[uid] = path

    def claim_extension(self, ext: str, path: str, owners: dict[str, str]) -> None:
        if ext in owners:
            self.err(f"{path}.extension", f"{ext!r} is already used by {owners[ext]}; extensions must be unique across users and virtual lines")
        else:
            owners[ext] = path

    def virtual_lines(
        self, data: dict, locs: dict[str, str], devices_of: dict[str, set[str] | None], ext_owner: dict[str, str]
    ) -> list[VirtualLine | None]:
        out: list[VirtualLine | None] = []
        id_owner = self.id_owner
        lines_per_user: dict[str, int] = {}
        for i, raw in enumerate(self.seq(data.get("virtual_lines"), "virtual_lines", "virtual line", False)):
            path = f"virtual_lines[{i}]"
            d = self.mapping(raw, path, _VLINE_KEYS)
            if d is None:
                out.append(None)
                continue
            n = len(self.errors)
            vid = self.ident(d, path)
            if vid is not None:
                self.claim_id(vid, path, id_owner)
            name = self.text(d, "name", path, "line display name")
            ext = self.extension(d, path)
            if ext is not None:
                self.claim_extension(ext, path, ext_owner)
            loc = self.location_ref(d, path, locs)
            default_lang = locs.get(loc, DEFAULT_LANGUAGE) if loc else DEFAULT_LANGUAGE
            lang = self.choice(d, "language", path, LANGUAGES, default_lang)
            user, device = self.assignment(d, path, devices_of)
            if user is not None:
                lines_per_user[user] = lines_per_user.get(user, 0) + 1
                if lines_per_user[user] > MAX_VIRTUAL_LINES_PER_USER:
                    self.err(f"{path}.assigned_to.user",
                             f"{user!r} already has {MAX_VIRTUAL_LINES_PER_USER} virtual lines; "
                             f"allowed: at most {MAX_VIRTUAL_LINES_PER_USER} per user")
            cr = self.recording_block(d, "callRecording", path, "line")
            if len(self.errors) == n:
                out.append(VirtualLine(vid, name, ext, loc, lang, user, device, cr))  # type: ignore[arg-type]
            else:
                out.append(None)
        return out

    def assignment(self, d: dict, path: str, devices_of: dict[str, set[str] | None]) -> tuple[str | None, str | None]:
        p = f"{path}.assigned_to"
        if "assigned_to" not in d:
            self.err(p, "missing; required (mapping {user: <user id>, device: mpp | webex-app})")
            return None, None
        a = self.mapping(d["assigned_to"], p, _ASSIGN_KEYS)
        if a is None:
            return None, None
        user = a.get("user")
        if "user" not in a:
            self.err(f"{p}.user", "missing; required (a user id)")
        elif not isinstance(user, str) or user not in devices_of:
            self.err(f"{p}.user", f"{_fmt(user)} is not a user; users: {', '.join(devices_of) or '(none)'}")
            user = None
        if "device" not in a:
            self.err(f"{p}.device", f"missing; required; allowed: {', '.join(DEVICE_TYPES)}")
            return user, None
        device = self.choice(a, "device", p, DEVICE_TYPES, "")
        if user is not None and device is not None:
            has = devices_of.get(user)
            if has is not None and device not in has:
                self.err(
                    f"{p}.device",
                    f"user {user!r} has no {device} device; {user} has: {', '.join(sorted(has)) or 'none'}",
                )
                device = None
        return user, device

    def pstn(self, data: dict, ext_owner: dict[str, str]) -> list[PstnParty | None]:
        out: list[PstnParty | None] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(self.seq(data.get("pstn"), "pstn", "PSTN party", False)):
            path = f"pstn[{i}]"
            d = self.mapping(raw, path, _PSTN_KEYS)
            if d is None:
                out.append(None)
                continue
            n = len(self.errors)
            number = d.get("number")
            if "number" not in d:
                self.err(f"{path}.number", 'missing; required (E.164: "+" then 8 to 15 digits, first digit 1-9)')
            elif not isinstance(number, str) or not _E164_RE.fullmatch(number):
                hint = " (write it as a quoted string)" if isinstance(number, int) else ""
                self.err(
                    f"{path}.number",
                    f'{_fmt(number)} is not an E.164 number{hint}; must be "+" then 8 to 15 digits, first digit 1-9, e.g. "+14155550100"',
                )
            elif number in seen:
                self.err(f"{path}.number", f"{number!r} is already used by pstn[{seen[number]}]; numbers must be unique")
            elif number[1:] in ext_owner:
                self.err(
                    f"{path}.number",
                    f"{number!r} without '+' equals the extension of {ext_owner[number[1:]]}; dialling would be ambiguous",
                )
            else:
                seen[number] = i
            name = self.text(d, "name", path, "display name", default=number if isinstance(number, str) else "")
            if len(self.errors) == n:
                out.append(PstnParty(number, name))  # type: ignore[arg-type]
            else:
                out.append(None)
        return out
