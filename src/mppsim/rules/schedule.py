"""Business hours of an auto attendant (Webex Calling: a location's business schedule): open on
some weekdays between two times of day, in a time zone. Outside them the attendant speaks its
after-hours menu. Pure logic: parsing with the org file's errors, and "is it open at this
instant".

    business_hours: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00",
                     timezone: America/Los_Angeles}

`days` may be empty (never open: the after-hours menu always); `to: "24:00"` is the end of the
day; `timezone` defaults to the attendant's location's.
"""
from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timezone
from functools import lru_cache

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = ("days", "from", "to", "timezone")


@dataclass(frozen=True)
class BusinessHours:
    days: tuple[str, ...]
    start: str           # "HH:MM"
    end: str             # "HH:MM", or "24:00"
    timezone: str        # IANA name

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (an aware datetime) falls in business hours."""
        local = at.astimezone(zoneinfo.ZoneInfo(self.timezone))
        if DAYS[local.weekday()] not in self.days:
            return False
        minute = local.hour * 60 + local.minute
        return _minutes(self.start) <= minute < _minutes(self.end)

    def to_dict(self) -> dict:
        return {"days": list(self.days), "from": self.start, "to": self.end, "timezone": self.timezone}


def is_open_now(hours: dict | None) -> bool:
    """The attendant's config form (`to_dict`, or None: no schedule, always business hours)."""
    if not hours:
        return True
    return BusinessHours(tuple(hours["days"]), hours["from"], hours["to"], hours["timezone"]).is_open(
        datetime.now(timezone.utc))


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    try:
        return frozenset(zoneinfo.available_timezones())
    except Exception:  # noqa: BLE001 - a platform without tzdata: none known
        return frozenset()


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _time_of_day(text: object, allow_24: bool) -> str | None:
    """'HH:MM' normalised, or None when it is not a time of day."""
    if not isinstance(text, str):
        return None
    if allow_24 and text.strip() == "24:00":
        return "24:00"
    try:
        t = time.fromisoformat(text.strip())
    except ValueError:
        return None
    if t.second or t.microsecond:
        return None
    return f"{t.hour:02d}:{t.minute:02d}"


def parse(raw: object, path: str, default_timezone: str,
          known_timezones: frozenset[str]) -> tuple[BusinessHours | None, list[str]]:
    """(the schedule, errors as `path.field: why; allowed ...`)."""
    if not isinstance(raw, dict):
        return None, [f"{path}: must be a mapping with keys {', '.join(KEYS)}; got {raw!r}"]
    errors = [f"{path}.{k}: unknown key; allowed: {', '.join(KEYS)}" for k in raw if k not in KEYS]
    days = raw.get("days")
    if not isinstance(days, list) or any(not isinstance(d, str) or d.lower() not in DAYS for d in days):
        errors.append(f"{path}.days: {days!r} is not allowed; a list of {', '.join(DAYS)} (may be empty: "
                      "never open)")
        days = []
    start = _time_of_day(raw.get("from"), allow_24=False)
    if start is None:
        errors.append(f"{path}.from: {raw.get('from')!r} is not a time of day; e.g. \"09:00\"")
    end = _time_of_day(raw.get("to"), allow_24=True)
    if end is None:
        errors.append(f"{path}.to: {raw.get('to')!r} is not a time of day; e.g. \"17:00\" or \"24:00\"")
    if start is not None and end is not None and _minutes(start) >= _minutes(end):
        errors.append(f"{path}.to: {end} is not after from ({start}); business hours lie within one day")
    tz = raw.get("timezone", default_timezone)
    if not isinstance(tz, str) or tz not in known_timezones:
        errors.append(f"{path}.timezone: {tz!r} is not an IANA time zone; e.g. UTC, America/New_York")
    if errors:
        return None, errors
    assert start is not None and end is not None
    ordered = tuple(d for d in DAYS if d in {x.lower() for x in days})
    return BusinessHours(ordered, start, end, str(tz)), []
