"""BroadWorks identities in the formats Webex Calling really uses, generated from the org file.

mppsim cannot know a real organisation's BroadWorks ids, so it makes values in the real formats,
stable for a given org file (same input -> same id, in every process and run):

* service provider  ``WBVDW`` + 6 digits           (``WBVDW867961``), from the organisation
* group             service provider + ``L`` + 5 digits (``WBVDW867961L33739``), from the location
* user id           ``user@domain``: the user's e-mail (org file ``email``, default
                    ``<id>@<org slug>.example``); a virtual line ``<id>@<org slug>.example``
* E.164 number      ``+<country code>555<extension, zero-padded to 7>`` (a 555 range, never a
                    real subscriber), from the location's country and the extension
* call half         ``callhalf-<n>:0`` and the correlation id ``<n>:1``, from the recorded call's
                    Call-ID (both agents of an internal call see the same Call-ID)

Pure stdlib; used by rules/settings.py (the R-USR-7 platform info is these ids) and by the
SIPREC builders (siprec/webex.py).
"""
from __future__ import annotations

import hashlib

SP_PREFIX = "WBVDW"

# ITU-T E.164 country calling codes of the countries an org file names most; others use 1.
COUNTRY_CODES = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "PL": "48", "DE": "49", "FR": "33", "ES": "34",
    "PT": "351", "BR": "55", "BG": "359", "IT": "39", "NL": "31", "BE": "32", "CH": "41", "AT": "43",
    "SE": "46", "NO": "47", "DK": "45", "FI": "358", "AU": "61", "NZ": "64", "JP": "81", "IN": "91",
    "MX": "52", "SG": "65", "ZA": "27", "CZ": "420",
}


def _digits(text: str, n: int) -> str:
    """n decimal digits derived from ``text`` (first digit never 0)."""
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    low = 10 ** (n - 1)
    return str(low + value % (9 * low))


def service_provider_id(org_slug: str) -> str:
    return SP_PREFIX + _digits(f"sp:{org_slug}", 6)


def group_id(org_slug: str, location_id: str) -> str:
    return service_provider_id(org_slug) + "L" + _digits(f"group:{org_slug}:{location_id}", 5)


def user_id(line_id: str, org_slug: str, email: str | None = None) -> str:
    return (email or f"{line_id}@{org_slug}.example").lower()


def e164(extension: str, country: str = "US") -> str:
    """The recorded user's generated DID, e.g. ``+15550001001`` for extension 1001 in the US."""
    return f"+{COUNTRY_CODES.get(country, '1')}555{extension.zfill(7)[-7:]}"


def call_half(call_id: str) -> str:
    """BroadWorks' id of one half of a call: ``callhalf-<n>:0``."""
    return f"callhalf-{_digits('callhalf:' + call_id, 9)}:0"


def ext_tracking_id(call_id: str) -> str:
    """BroadWorks' extTrackingID (= X-BroadWorks-Correlation-Info): ``<n>:1``, shared by every
    recording of one call."""
    return f"{_digits('track:' + call_id, 7)}:1"
