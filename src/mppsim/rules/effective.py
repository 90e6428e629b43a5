"""What the per-call policy needs to know about one recorded party (a user's primary line or a
virtual line), resolved from the organisation, location and person/virtual-line settings.

Pure data: built by rules/settings.py (`SettingsStore.effective(line_id)`), read by
rules/policy.py, pushed to the agents as JSON (to_dict / from_dict).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# R-USR-2: the public API's names, plus BroadWorks' plain "On Demand"
NEVER = "Never"
ALWAYS = "Always"
ALWAYS_PAUSE = "Always with Pause/Resume"
ON_DEMAND = "On Demand"                                   # records from answer, kept only on Record
ON_DEMAND_USER_START = "On Demand with User Initiated Start"
MODES = (NEVER, ALWAYS, ALWAYS_PAUSE, ON_DEMAND, ON_DEMAND_USER_START)

NOTIFY_NONE, NOTIFY_BEEP, NOTIFY_ANNOUNCEMENT = "None", "Beep", "Play Announcement"   # R-USR-5
NOTIFICATION_TYPES = (NOTIFY_NONE, NOTIFY_BEEP, NOTIFY_ANNOUNCEMENT)

FAILURE_BEHAVIORS = ("PROCEED_WITH_CALL_NO_ANNOUNCEMENT", "PROCEED_CALL_WITH_ANNOUNCEMENT",
                     "END_CALL_WITH_ANNOUNCEMENT")                                    # R-ORG-3
PROVIDERS = ("Dubber", "Imagicle", "CallCabinet", "Webex")                            # R-PRV-1, R-PRV-9


@dataclass(frozen=True)
class Selective:
    """R-USR-8 selectiveCallRecordingSettings: which calls Always / Always with Pause/Resume record."""
    inbound_internal: bool = True
    inbound_external: bool = True
    outbound_internal: bool = True
    outbound_external: bool = True

    def records(self, direction: str, external: bool) -> bool:
        return getattr(self, f"{'inbound' if direction == 'in' else 'outbound'}_"
                             f"{'external' if external else 'internal'}")


@dataclass(frozen=True)
class Compliance:
    """R-CMP-1/2: the compliance announcement in force at the party's location."""
    inbound_pstn: bool = False
    outbound_pstn: bool = False
    outbound_delay_enabled: bool = False
    delay_seconds: int = 0
    custom_file: str | None = None


@dataclass(frozen=True)
class EffectiveSettings:
    line_id: str                          # user id (primary line) or virtual line id
    owner: str                            # the user whose devices show the line
    kind: str                             # "user" | "virtual_line"
    devices: tuple[str, ...]              # device types showing this line: "mpp", "webex-app"
    enabled: bool = False                 # recording enabled for this person / line
    mode: str = NEVER
    record_voicemail: bool = False        # R-USR-3
    notification: str = NOTIFY_NONE       # R-USR-5 pause/resume notification
    repeat_enabled: bool = False          # R-USR-6
    repeat_interval: int = 20
    announce_internal: bool = False       # R-USR-4 start/stop announcement, internal calls
    announce_pstn: bool = False           # R-USR-4 start/stop announcement, PSTN calls
    selective: Selective | None = None    # R-USR-8; None = record every call
    provider: str | None = None           # effective provider; None = no recording (R-LOC-1)
    provider_tier: str | None = None      # Dubber: "Go" | "Team" | "Premier" | "Standard" | "AI"
    recording_blocked: str | None = None  # why recording must fail for this party (R-PRV-6, R-USR-7)
    failure_behavior: str = FAILURE_BEHAVIORS[0]
    compliance: Compliance = field(default_factory=Compliance)
    language: str = "en_us"               # R-CMP-5 announcement language of this line
    platform: tuple[str, str, str] = ("", "", "")  # R-USR-7 serviceProvider, externalGroup, externalIdentifier
    recorder: str | None = None           # SIPREC target URI configured for the provider (None = embedded)
    number: str = ""                      # the line's generated E.164 number (rules/broadworks.py)

    @property
    def records(self) -> bool:
        return self.enabled and self.mode != NEVER and self.provider is not None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EffectiveSettings":
        d = dict(d)
        d["devices"] = tuple(d.get("devices", ()))
        d["platform"] = tuple(d.get("platform", ("", "", "")))
        if d.get("selective") is not None:
            d["selective"] = Selective(**d["selective"])
        d["compliance"] = Compliance(**d.get("compliance", {}))
        return cls(**d)
