"""Recording provider profiles: what each provider offers and demands (R-PRV-*).

Pure data and pure functions, no state: rules/settings.py asks these when it validates a
choice of provider and resolves a line's effective settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from mppsim.rules.effective import PROVIDERS

DUBBER, IMAGICLE, CALLCABINET, WEBEX = PROVIDERS
NO_PROVIDER = "None"                      # R-PRV-1, R-ORG-2: recording off
PROVIDER_CHOICES = PROVIDERS + (NO_PROVIDER,)
DEFAULT_PROVIDER = DUBBER                 # R-ORG-1: preselected

# Webex Calling data-centre regions a customer can be hosted in. Only the recording providers
# restrict them (R-PRV-4, R-PRV-5); the list is what Webex Calling documents, not exhaustive.
REGIONS = ("US", "CA", "EU", "EUN", "UK", "AU", "JP", "SG", "IN", "SA")
DEFAULT_REGION = "US"

AUTOMATIC, MANUAL = "automatic", "manual"  # R-PRV-6 account provisioning
EXTERNAL_TYPE = "BroadWorks"               # R-USR-7: "External Type" in the provider portal
PRODUCT = "Webex Calling"                  # R-USR-7: "Product" in the provider portal

# R-PRV-7: exactly what accepting a provider's terms shares with it
TERMS_SHARED = ("customer name", "the user's location time zone", "first name", "last name", "e-mail")


@dataclass(frozen=True)
class Tier:
    """A Dubber tier (R-PRV-2)."""
    name: str
    free: bool
    retention_days: int | None     # None = unlimited
    admins_see_recordings: bool    # Go: only the user sees their own recordings


DUBBER_TIERS: dict[str, Tier] = {
    "Go": Tier("Go", True, 30, False),
    "Team": Tier("Team", False, None, True),
    "Premier": Tier("Premier", False, None, True),
    "Standard": Tier("Standard", False, None, True),   # name used in some regions' docs
    "AI": Tier("AI", False, None, True),
}
DEFAULT_TIER = "Go"                  # free for every Webex Calling customer (R-PRV-2)
FREE_RETENTION_DAYS = 30             # R-PRV-2 / R-PRV-3


@dataclass(frozen=True)
class ProviderProfile:
    name: str
    provisioning: str                  # AUTOMATIC | MANUAL (R-PRV-6)
    regions: tuple[str, ...] | None    # None = every region (R-PRV-4, R-PRV-5)
    retention_days: int | None         # None = unlimited or tier-dependent (Dubber)
    storage_limit_gb: int | None       # None = unlimited
    needs_contract: bool
    free_trial: bool
    terms_required: bool               # R-PRV-7: a third party receives user data
    features: tuple[str, ...] = ()


PROFILES: dict[str, ProviderProfile] = {
    DUBBER: ProviderProfile(DUBBER, AUTOMATIC, None, None, None, False, False, True,
                            ("Dubber Go free tier", "paid tiers: Team, Premier, Standard, AI")),
    IMAGICLE: ProviderProfile(IMAGICLE, MANUAL, ("US", "EU", "EUN"), None, None, True, True, True,
                              ("analytics", "transcripts", "sentiment", "screen recording",
                               "export to customer storage")),
    CALLCABINET: ProviderProfile(CALLCABINET, MANUAL, ("US",), None, None, True, True, True,
                                 ("compliance recording", "AI analytics", "export to customer storage")),
    # R-PRV-9: Webex keeps recordings one year, 100 GB per organisation; no third party, so no terms
    WEBEX: ProviderProfile(WEBEX, AUTOMATIC, None, 365, 100, False, False, False,
                           ("Converged Recordings API", "AI summaries")),
}


def profile(provider: str) -> ProviderProfile:
    """The profile of a provider (KeyError for None or an unknown name)."""
    return PROFILES[provider]


def region_refusal(provider: str, region: str) -> str | None:
    """Why ``provider`` cannot serve a customer hosted in ``region`` (R-PRV-4, R-PRV-5), or None."""
    p = PROFILES.get(provider)
    if p is None or p.regions is None or region in p.regions:
        return None
    rule = {IMAGICLE: "R-PRV-4", CALLCABINET: "R-PRV-5"}.get(provider, "R-PRV-1")
    return (f"{provider} is not available in region {region!r}; {provider} is available in: "
            f"{', '.join(p.regions)} ({rule})")


def terms_refusal(provider: str) -> str:
    """The 409 text when a provider is chosen before its terms were accepted (R-PRV-7)."""
    return (f"{provider}: terms of service not accepted; accept {provider}'s terms first "
            f"(termsAccepted); accepting shares with {provider}: {', '.join(TERMS_SHARED)} (R-PRV-7)")


def admins_see_recordings(provider: str | None, tier: str | None) -> bool:
    """R-PRV-2: with Dubber Go only the user sees their recordings; paid tiers let admins in."""
    if provider == DUBBER:
        return DUBBER_TIERS[tier or DEFAULT_TIER].admins_see_recordings
    return provider is not None


def retention_expiry(recorded_at: datetime, tier: str,
                     tier_changes: Sequence[tuple[datetime, str]] = (),
                     provider: str = DUBBER) -> datetime | None:
    """When a recording made at ``recorded_at`` is deleted; None = kept indefinitely.

    Dubber (R-PRV-2, R-PRV-3): a recording made on a free tier is deleted 30 days later, unless
    the user moves to a paid tier first (deletion stops). A recording on a paid tier is kept
    until a move to the free tier; it is then deleted 30 days after that move. ``tier`` is the
    tier in force at ``recorded_at``; ``tier_changes`` are (when, new tier) in any order; changes
    before the recording or after its deletion do not matter.
    Webex (R-PRV-9): one year, whatever the tier. Imagicle and CallCabinet: unlimited.
    """
    if provider != DUBBER:
        days = PROFILES[provider].retention_days
        return recorded_at + timedelta(days=days) if days is not None else None
    keep = timedelta(days=FREE_RETENTION_DAYS)
    expiry = recorded_at + keep if DUBBER_TIERS[tier].free else None
    for when, new in sorted(tier_changes, key=lambda c: c[0]):
        if when < recorded_at:
            continue
        if expiry is not None and when >= expiry:
            break                                  # already deleted: nothing brings it back
        if DUBBER_TIERS[new].free:
            if expiry is None:
                expiry = when + keep               # paid -> free: 30 days from the change
        else:
            expiry = None                          # free -> paid: automatic deletion stops
    return expiry


@dataclass(frozen=True)
class ProviderAccount:
    """A customer's account with a provider, as the partner sees it (R-PRV-8)."""
    customer: str
    provider: str
    administrators: tuple[str, ...]


def partner_admin_conflicts(accounts: Iterable[ProviderAccount]) -> list[str]:
    """R-PRV-8: a partner administrator may not be the same admin user on the provider accounts
    of several customers. Returns one message per administrator used by more than one customer
    of the same provider (admin e-mails compared case-insensitively)."""
    seen: dict[tuple[str, str], list[str]] = {}
    for a in accounts:
        for admin in a.administrators:
            customers = seen.setdefault((a.provider, admin.lower()), [])
            if a.customer not in customers:
                customers.append(a.customer)
    return [f"{provider}: administrator {admin!r} is used by several customers ({', '.join(cs)}); "
            f"a partner administrator may administer one customer's {provider} account only (R-PRV-8)"
            for (provider, admin), cs in seen.items() if len(cs) > 1]
