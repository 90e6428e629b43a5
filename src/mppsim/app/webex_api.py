"""The Webex Calling API subset for call recording, served under /v1 (issue 12).

Real paths, JSON field names, enum strings, status codes and id style, so that scripts written
for Webex Calling -- wxc-sdk with ``RestSession.BASE = "http://127.0.0.1:PORT/v1"``, curl,
Postman -- run against the simulator unchanged. Documented in docs/webex-api.md; Webex's wire
conventions (ids, errors, paging, bodies) are in app/webex_wire.py.

Every handler reads and writes ``sim.settings`` (rules/settings.py's SettingsStore), the one
store behind the Control Hub view, the Python Simulator and this API: a PUT is one atomic store
change (validated whole, applied whole or not at all), pushed to the agents by the simulator's
subscriber and shown by the view, and a GET always reads the store as it is now.

Mapping of the API onto mppsim's model (field names in rules/settings_schema.py):
- person / virtual line ``callRecording``: the store's line settings as they are (API names);
- organisation ``callRecording`` / ``vendors`` / ``vendor``: ``organisation.recording.provider``
  (``enabled: false`` = provider None), ``failureBehavior``, ``region`` (= storageRegion);
- ``termsOfService``: ``termsAccepted``; ``complianceAnnouncement``: ``compliance``;
- location ``vendors`` / ``vendor`` / ``complianceAnnouncement``: the location's ``provider``,
  ``failureBehavior``, ``compliance`` with ``organisation`` = the API's ``orgDefaultEnabled`` /
  ``orgFailureBehaviorEnabled`` / ``useOrgSettingsEnabled``.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from mppsim.rules import providers as P
from mppsim.rules import settings_schema as S
from mppsim.rules.settings import SettingsError, check_location_block, check_org_block

from .http_server import HttpError, Request, Response, Router
from .webex_wire import (WebexIds, bad, bool_arg, bool_field, job_id, json_body, no_nulls, page,
                         refused, unknown_or_changed)

__all__ = ["WebexApi", "register"]

CREATED = "2025-01-01T00:00:00.000Z"          # people and locations exist "since" a fixed date
NOT_FOUND = "The requested resource could not be found."

# Vendor facts the API reports. The URLs are the vendors' public sites (not checked against
# what Webex shows); Webex as vendor has no terms URL (wxc-sdk: "expected to be empty").
VENDORS: dict[str, dict[str, Any]] = {
    P.DUBBER: {"description": "Dubber call recording: Go (free), Team, Premier, Standard, AI",
               "loginUrl": "https://www.dubber.net/login", "termsOfServiceUrl": "https://www.dubber.net/terms"},
    P.IMAGICLE: {"description": "Imagicle Call Recording: analytics, transcripts, screen recording",
                 "loginUrl": "https://www.imagicle.com/", "termsOfServiceUrl": "https://www.imagicle.com/en/legal/"},
    P.CALLCABINET: {"description": "CallCabinet: compliance recording and AI analytics",
                    "loginUrl": "https://www.callcabinet.com/", "termsOfServiceUrl": "https://www.callcabinet.com/legal"},
    P.WEBEX: {"description": "Webex: recordings kept one year, 100 GB per organisation",
              "loginUrl": "https://admin.webex.com/", "termsOfServiceUrl": ""},
}
REGION_NAMES = {"US": "United States", "CA": "Canada", "EU": "Europe (Frankfurt)", "EUN": "Europe (Amsterdam)",
                "UK": "United Kingdom", "AU": "Australia", "JP": "Japan", "SG": "Singapore", "IN": "India",
                "SA": "Saudi Arabia"}
LICENSE_TYPES = {"Professional": "PROFESSIONAL_USER", "Basic": "BASIC_USER"}
COMPLIANCE_FLAGS = ("inboundPSTNCallsEnabled", "outboundPSTNCallsEnabled", "outboundPSTNCallsDelayEnabled",
                    "delayInSeconds")


# ---------------------------------------------------------------------------------------------
# The API


class WebexApi:
    """The handlers; one per simulator. ``sim`` needs ``org`` and ``settings``."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.org = sim.org
        self.store = sim.settings
        self.ids = WebexIds(sim.org)

    # -- look-ups -------------------------------------------------------------------------

    def _check_org(self, req: Request) -> None:
        org_id = req.arg("orgId")
        if org_id is not None and org_id != self.ids.org:
            raise bad(f"orgId: {org_id!r}: no such organization; this is {self.org.name!r} ({self.ids.org})",
                       status=404)

    def _find(self, kind: str, wid: str, what: str) -> str:
        key = self.ids.lookup(kind, wid)
        if key is None:
            raise HttpError(404, NOT_FOUND, [{"description": f"{what} {wid!r} not found", "errorCode": 40400}])
        return key

    def _vendor(self, wid: str) -> str:
        return self._find("RECORDING_VENDOR", wid, "vendor")

    def _vendor_json(self, name: str) -> dict:
        v = VENDORS[name]
        return {"id": self.ids.vendors[name], "name": name, "description": v["description"],
                "migrateUserCreationEnabled": P.profile(name).provisioning == P.AUTOMATIC,
                "loginUrl": v["loginUrl"], "termsOfServiceUrl": v["termsOfServiceUrl"]}

    # -- people, locations, virtual lines ----------------------------------------------------

    def _person(self, u, calling: bool) -> dict:
        first, _, last = u.name.partition(" ")
        d: dict[str, Any] = {
            "id": self.ids.people[u.id], "emails": [u.email], "displayName": u.name, "nickName": first,
            "firstName": first, "lastName": last or first, "orgId": self.ids.org,
            "created": CREATED, "lastModified": CREATED, "type": "person",
        }
        if u.licence in LICENSE_TYPES:
            d["licenses"] = [self.ids.make("LICENSE", f"webex-calling-{u.licence.lower()}")]
        if calling:
            d["phoneNumbers"] = [{"type": "work_extension", "value": u.extension, "primary": True}]
            d["extension"] = u.extension
            d["locationId"] = self.ids.locations[u.location]
        return d

    def list_people(self, req: Request) -> Response:
        self._check_org(req)
        calling = bool_arg(req, "callingData")
        users = list(self.org.users)
        if (email := req.arg("email")) is not None:
            users = [u for u in users if u.email.lower() == email.lower()]
        if (name := req.arg("displayName")) is not None:
            users = [u for u in users if u.name.lower().startswith(name.lower())]
        if (loc := req.arg("locationId")) is not None:
            users = [u for u in users if self.ids.locations[u.location] == loc]
        if (ids := req.arg("id")) is not None:
            wanted = [i for i in ids.split(",") if i]
            users = [u for u in users if self.ids.people[u.id] in wanted]
        return page(req, [self._person(u, calling) for u in users], "items")

    def get_person(self, req: Request, personId: str) -> dict:
        self._check_org(req)
        uid = self._find("PEOPLE", personId, "person")
        return self._person(self.org.user(uid), bool_arg(req, "callingData"))

    def _location(self, loc) -> dict:
        return {"id": self.ids.locations[loc.id], "name": loc.name, "orgId": self.ids.org,
                "timeZone": loc.timezone, "preferredLanguage": loc.language,
                "announcementLanguage": loc.language, "address": {"country": loc.country}}

    def list_locations(self, req: Request) -> Response:
        self._check_org(req)
        locs = list(self.org.locations)
        if (name := req.arg("name")) is not None:
            locs = [loc for loc in locs if loc.name.lower().startswith(name.lower())]
        if (wid := req.arg("id")) is not None:
            locs = [loc for loc in locs if self.ids.locations[loc.id] == wid]
        return page(req, [self._location(loc) for loc in locs], "items")

    def get_location(self, req: Request, locationId: str) -> dict:
        self._check_org(req)
        return self._location(self.org.location(self._find("LOCATION", locationId, "location")))

    def _virtual_line(self, v) -> dict:
        first, _, last = v.name.partition(" ")
        loc = self.org.location(v.location)
        return {"id": self.ids.virtual_lines[v.id], "firstName": first, "lastName": last or first,
                "displayName": v.name, "callerIdFirstName": first, "callerIdLastName": last or first,
                "number": {"extension": v.extension, "primary": True},
                "location": {"id": self.ids.locations[loc.id], "name": loc.name},
                "numberOfDevicesAssigned": 1, "announcementLanguage": v.language}

    def list_virtual_lines(self, req: Request) -> Response:
        self._check_org(req)
        vls = list(self.org.virtual_lines)
        if (loc := req.arg("locationId")) is not None:
            vls = [v for v in vls if self.ids.locations[v.location] == loc]
        if (ids := req.arg("id")) is not None:
            vls = [v for v in vls if self.ids.virtual_lines[v.id] in ids.split(",")]
        return page(req, [self._virtual_line(v) for v in vls], "virtualLines")

    # -- a line's callRecording ------------------------------------------------------------

    def _line_recording(self, line_id: str) -> dict:
        return self.store.get_person(line_id)

    def get_person_recording(self, req: Request, personId: str) -> dict:
        self._check_org(req)
        return self._line_recording(self._find("PEOPLE", personId, "person"))

    def put_person_recording(self, req: Request, personId: str) -> None:
        self._check_org(req)
        self._put_line(self._find("PEOPLE", personId, "person"), json_body(req))

    def get_vl_recording(self, req: Request, virtualLineId: str) -> dict:
        self._check_org(req)
        return self._line_recording(self._find("VIRTUAL_LINE", virtualLineId, "virtual line"))

    def put_vl_recording(self, req: Request, virtualLineId: str) -> None:
        self._check_org(req)
        self._put_line(self._find("VIRTUAL_LINE", virtualLineId, "virtual line"), json_body(req))

    def _put_line(self, line_id: str, body: dict) -> None:
        try:
            self.store.put_person(line_id, body, view=S.VIEW_API)
        except SettingsError as e:
            raise refused(e) from None

    # -- organisation ----------------------------------------------------------------------

    def _org_change(self, patch: dict, confirm_off: bool = False, problems: list[str] = ()) -> None:
        """One store change; ``problems`` found by the mapping are reported together with the
        store's shape errors of the rest of the body (every error at once, nothing applied)."""
        if problems:
            raise bad(*problems, *check_org_block(patch, "organisation.recording"))
        try:
            self.store.set_org(patch, confirm_off=confirm_off)
        except SettingsError as e:
            raise refused(e) from None

    def _loc_change(self, loc_id: str, patch: dict, problems: list[str] = ()) -> None:
        if problems:
            raise bad(*problems, *check_location_block(patch, f"locations.{loc_id}.recording"))
        try:
            self.store.set_location(loc_id, patch)
        except SettingsError as e:
            raise refused(e) from None

    def get_org_recording(self, req: Request) -> dict:
        self._check_org(req)
        provider = self.store.get_org()["provider"]
        d: dict[str, Any] = {"organization": {"id": self.ids.org, "name": self.org.name},
                             "enabled": provider != P.NO_PROVIDER}
        if provider != P.NO_PROVIDER:
            d.update(vendorId=self.ids.vendors[provider], vendorName=provider,
                     termsOfServiceUrl=VENDORS[provider]["termsOfServiceUrl"])
        return d

    def put_org_recording(self, req: Request) -> None:
        """``enabled: false`` turns recording off for the organisation (the API call is the
        administrator's confirmation, R-ORG-2); ``true`` turns it back on with the preselected
        provider (R-ORG-1) unless a provider is chosen already."""
        self._check_org(req)
        body = json_body(req)
        current = self.get_org_recording(req)
        problems = unknown_or_changed(body, ("enabled",), {k: v for k, v in current.items() if k != "enabled"},
                         "callRecording")
        enabled = bool_field(body, "enabled", "callRecording", problems)
        if "enabled" not in body:
            problems.append("callRecording.enabled: missing; required (true, false)")
        if problems:
            raise bad(*problems)
        if enabled == current["enabled"]:
            return None
        if enabled:
            self._org_change({"provider": P.DEFAULT_PROVIDER})
        else:
            self._org_change({"provider": P.NO_PROVIDER}, confirm_off=True)
        return None

    def get_org_vendors(self, req: Request) -> dict:
        self._check_org(req)
        org = self.store.get_org()
        d: dict[str, Any] = {}
        if org["provider"] != P.NO_PROVIDER:
            d.update(vendorId=self.ids.vendors[org["provider"]], vendorName=org["provider"])
        d.update(vendors=[self._vendor_json(n) for n in P.PROVIDERS], storageRegion=org["region"],
                 failureBehavior=org["failureBehavior"])
        return d

    def put_org_vendor(self, req: Request) -> Response:
        self._check_org(req)
        body = no_nulls(json_body(req))
        problems = unknown_or_changed(body, ("vendorId", "failureBehavior", "storageRegion"), {}, "vendor")
        patch: dict[str, Any] = {}
        if "vendorId" not in body:
            problems.append(f"vendor.vendorId: missing; required: one of {self._vendor_list()}")
        elif self.ids.lookup("RECORDING_VENDOR", str(body["vendorId"])) is None:
            problems.append(f"vendor.vendorId: {S.fmt(body['vendorId'])} is not a vendor; allowed: {self._vendor_list()}")
        else:
            patch["provider"] = self.ids.lookup("RECORDING_VENDOR", body["vendorId"])
        if "failureBehavior" in body:
            patch["failureBehavior"] = body["failureBehavior"]
        if "storageRegion" in body:
            patch["region"] = body["storageRegion"]
        self._org_change(patch, problems=problems)
        return Response(200, {"jobId": job_id()})

    def _vendor_list(self) -> str:
        return ", ".join(f"{self.ids.vendors[n]} ({n})" for n in P.PROVIDERS)

    def get_regions(self, req: Request) -> dict:
        self._check_org(req)
        region = self.store.get_org()["region"]
        return {"regions": [{"code": c, "name": REGION_NAMES.get(c, c), "defaultEnabled": c == region}
                            for c in P.REGIONS]}

    def _members(self, req: Request, lines: list[str]) -> Response:
        standard_only = bool_arg(req, "standardUserOnly")
        out = []
        for lid in lines:
            info = self.store.line_info(lid)
            if info.kind == "user":
                u = self.org.user(lid)
                first, _, last = u.name.partition(" ")
                lic = LICENSE_TYPES.get(u.licence, "PROFESSIONAL_USER")
                member = {"id": self.ids.people[lid], "firstName": first, "lastName": last or first,
                          "type": "PEOPLE", "licenseType": lic}
            else:
                v = self.org.virtual_line(lid)
                first, _, last = v.name.partition(" ")
                member = {"id": self.ids.virtual_lines[lid], "firstName": first, "lastName": last or first,
                          "type": "VIRTUAL_LINE", "licenseType": "VIRTUAL_PROFILE"}
            if standard_only and member["licenseType"] != "BASIC_USER":
                continue
            out.append(member)
        return page(req, out, "members")

    def org_vendor_users(self, req: Request) -> Response:
        """The lines recorded by the organisation's vendor: recording enabled, at a location that
        uses the organisation's provider."""
        self._check_org(req)
        eff = self.store.effective_all()
        lines = [lid for lid, e in eff.items() if e.enabled and e.provider is not None
                 and self.store.get_location(self.store.line_info(lid).location)["provider"] == S.ORGANISATION]
        return self._members(req, lines)

    def location_vendor_users(self, req: Request, locationId: str) -> Response:
        """The lines recorded by the location's vendor: recording enabled, at that location."""
        self._check_org(req)
        loc = self._find("LOCATION", locationId, "location")
        eff = self.store.effective_all()
        lines = [lid for lid, e in eff.items() if e.enabled and e.provider is not None
                 and self.store.line_info(lid).location == loc]
        return self._members(req, lines)

    # -- terms of service (R-PRV-7) ----------------------------------------------------------

    def get_terms(self, req: Request, vendorId: str) -> dict:
        self._check_org(req)
        name = self._vendor(vendorId)
        accepted = name in self.store.get_org()["termsAccepted"] or not P.profile(name).terms_required
        return {"vendorId": vendorId, "vendorName": name, "termsOfServiceEnabled": accepted,
                "termsOfServiceUrl": VENDORS[name]["termsOfServiceUrl"]}

    def put_terms(self, req: Request, vendorId: str) -> None:
        self._check_org(req)
        name = self._vendor(vendorId)
        body = json_body(req)
        current = self.get_terms(req, vendorId)
        problems = unknown_or_changed(body, ("termsOfServiceEnabled",),
                         {k: v for k, v in current.items() if k != "termsOfServiceEnabled"}, "termsOfService")
        enabled = bool_field(body, "termsOfServiceEnabled", "termsOfService", problems)
        if "termsOfServiceEnabled" not in body:
            problems.append("termsOfService.termsOfServiceEnabled: missing; required (true, false)")
        if problems:
            raise bad(*problems)
        if not P.profile(name).terms_required:
            return None               # Webex has no terms to accept (R-PRV-7): nothing to store
        terms = [t for t in self.store.get_org()["termsAccepted"] if t != name]
        self._org_change({"termsAccepted": terms + [name] if enabled else terms})
        return None

    # -- compliance announcement (R-CMP-1, R-CMP-2) -------------------------------------------

    def _announcement_file(self, path: str | None, level: str) -> dict | None:
        if path is None:
            return None
        return {"id": self.ids.make("ANNOUNCEMENT", path), "fileName": os.path.basename(path),
                "mediaFileType": "WAV", "level": level}

    def get_org_compliance(self, req: Request) -> dict:
        self._check_org(req)
        c = self.store.get_org()["compliance"]
        d = {k: c[k] for k in COMPLIANCE_FLAGS}
        d["useCustomAnnouncementEnabled"] = c["customAnnouncementFile"] is not None
        if (f := self._announcement_file(c["customAnnouncementFile"], "ORGANIZATION")) is not None:
            d["audioAnnouncementFile"] = f
        return d

    def _custom_file(self, use: bool | None, file_id: Any, current: str | None, path: str,
                     problems: list[str]) -> tuple[bool, str | None]:
        """(change?, file): announcement files cannot be uploaded here, so a custom announcement
        is the one the org file names (its id is in the GET)."""
        if current is not None:
            self.ids.make("ANNOUNCEMENT", current)   # known even if no GET showed it in this run
        if use is None and file_id is None:
            return False, None
        if use is False:
            return True, None
        if file_id is not None:
            path_of = self.ids.lookup("ANNOUNCEMENT", str(file_id))
            if path_of is None:
                problems.append(f"{path}.audioAnnouncementFileId: {S.fmt(file_id)} is not an announcement file; "
                                f"mppsim knows only the customAnnouncementFile of its org file "
                                f"({'none' if current is None else repr(self.ids.make('ANNOUNCEMENT', current))})")
                return False, None
            return True, path_of
        if current is None:
            problems.append(f"{path}.useCustomAnnouncementEnabled: true needs audioAnnouncementFileId; "
                            f"no custom announcement file is configured (customAnnouncementFile in the org file)")
        return False, None

    def put_org_compliance(self, req: Request) -> None:
        self._check_org(req)
        body = no_nulls(json_body(req))
        current = self.get_org_compliance(req)
        path = "complianceAnnouncement"
        ro = {"audioAnnouncementFile": current["audioAnnouncementFile"]} if "audioAnnouncementFile" in current else {}
        problems = unknown_or_changed(body, COMPLIANCE_FLAGS + ("useCustomAnnouncementEnabled", "audioAnnouncementFileId"),
                         ro, path)
        patch = {k: body[k] for k in COMPLIANCE_FLAGS if k in body}
        use = bool_field(body, "useCustomAnnouncementEnabled", path, problems)
        cur_file = self.store.get_org()["compliance"]["customAnnouncementFile"]
        change, file = self._custom_file(use, body.get("audioAnnouncementFileId"), cur_file, path, problems)
        if change:
            patch["customAnnouncementFile"] = file
        self._org_change({"compliance": patch}, problems=problems)
        return None

    def get_location_compliance(self, req: Request, locationId: str) -> dict:
        self._check_org(req)
        loc = self._find("LOCATION", locationId, "location")
        own = self.store.get_location(loc)["compliance"]
        use_org = own == S.ORGANISATION
        c = self.store.get_org()["compliance"] if use_org else own
        d: dict[str, Any] = {"useOrgSettingsEnabled": use_org, **{k: c[k] for k in COMPLIANCE_FLAGS},
                             "useOrgLevelAnnouncementEnabled": use_org or c["customAnnouncementFile"] is None}
        if not use_org and c["customAnnouncementFile"] is not None:
            d["customComplianceAnnouncement"] = {
                "type": "CUSTOM", "audioAnnouncementFile": self._announcement_file(c["customAnnouncementFile"], "LOCATION")}
        return d

    def put_location_compliance(self, req: Request, locationId: str) -> None:
        """``useOrgSettingsEnabled: true`` = the organisation's announcement (R-CMP-1); false =
        location-specific values, starting from the values shown."""
        self._check_org(req)
        loc = self._find("LOCATION", locationId, "location")
        body = no_nulls(json_body(req))
        current = self.get_location_compliance(req, locationId)
        path = f"locations.{loc}.complianceAnnouncement"
        problems = unknown_or_changed(body, ("useOrgSettingsEnabled", "useOrgLevelAnnouncementEnabled",
                                "customComplianceAnnouncement") + COMPLIANCE_FLAGS, {}, path)
        use_org = bool_field(body, "useOrgSettingsEnabled", path, problems)
        use_org = current["useOrgSettingsEnabled"] if use_org is None else use_org
        use_org_file = bool_field(body, "useOrgLevelAnnouncementEnabled", path, problems)
        if use_org:
            changed = [k for k in COMPLIANCE_FLAGS if k in body and body[k] != current[k]]
            problems += [f"{path}.{k}: cannot be set with useOrgSettingsEnabled: true (the organisation's "
                         f"announcement applies); give useOrgSettingsEnabled: false for location values (R-CMP-1)"
                         for k in changed]
            self._loc_change(loc, {"compliance": S.ORGANISATION}, problems=problems)
            return None
        patch = {k: current[k] for k in COMPLIANCE_FLAGS}     # location values start from those shown
        patch.update({k: body[k] for k in COMPLIANCE_FLAGS if k in body})
        cca = body.get("customComplianceAnnouncement") or {}
        if not isinstance(cca, dict):
            problems.append(f"{path}.customComplianceAnnouncement: {S.fmt(cca)} is not allowed; must be an object")
            cca = {}
        own = self.store.get_location(loc)["compliance"]
        cur_file = own["customAnnouncementFile"] if isinstance(own, dict) else None
        use_custom = None if use_org_file is None else not use_org_file
        change, file = self._custom_file(use_custom, cca.get("audioAnnouncementFileId"), cur_file, path, problems)
        patch["customAnnouncementFile"] = file if change else cur_file
        self._loc_change(loc, {"compliance": patch}, problems=problems)
        return None

    # -- announcements ---------------------------------------------------------------------

    def get_org_announcements(self, req: Request) -> dict:
        self._check_org(req)
        return self.store.get_org()["announcements"]

    def put_org_announcements(self, req: Request) -> None:
        self._check_org(req)
        self._org_change({"announcements": no_nulls(json_body(req))})
        return None

    # -- location vendors (R-LOC-1, R-ORG-3) -------------------------------------------------

    def get_location_vendors(self, req: Request, locationId: str) -> dict:
        self._check_org(req)
        loc = self.store.get_location(self._find("LOCATION", locationId, "location"))
        org = self.store.get_org()
        d: dict[str, Any] = {"orgDefaultEnabled": loc["provider"] == S.ORGANISATION}
        if org["provider"] != P.NO_PROVIDER:
            d.update(orgDefaultVendorId=self.ids.vendors[org["provider"]], orgDefaultVendorName=org["provider"])
        provider = org["provider"] if loc["provider"] == S.ORGANISATION else loc["provider"]
        if provider != P.NO_PROVIDER:
            d.update(defaultVendorId=self.ids.vendors[provider], defaultVendorName=provider)
        d.update(vendors=[self._vendor_json(n) for n in P.PROVIDERS], orgStorageRegionEnabled=True,
                 orgStorageRegion=org["region"], storageRegion=org["region"],
                 orgFailureBehaviorEnabled=loc["failureBehavior"] == S.ORGANISATION,
                 orgFailureBehavior=org["failureBehavior"],
                 failureBehavior=(org["failureBehavior"] if loc["failureBehavior"] == S.ORGANISATION
                                  else loc["failureBehavior"]))
        return d

    def put_location_vendor(self, req: Request, locationId: str) -> Response:
        self._check_org(req)
        loc_id = self._find("LOCATION", locationId, "location")
        body = no_nulls(json_body(req))
        path = f"locations.{loc_id}.vendor"
        problems = unknown_or_changed(body, ("id", "orgDefaultEnabled", "failureBehavior", "orgFailureBehaviorEnabled"), {}, path)
        current = self.get_location_vendors(req, locationId)
        org = self.store.get_org()
        patch: dict[str, Any] = {}
        org_default = bool_field(body, "orgDefaultEnabled", path, problems)
        vendor = None
        if "id" in body:
            vendor = self.ids.lookup("RECORDING_VENDOR", str(body["id"]))
            if vendor is None:
                problems.append(f"{path}.id: {S.fmt(body['id'])} is not a vendor; allowed: {self._vendor_list()}")
        if org_default:
            if vendor is not None and vendor != org["provider"]:
                problems.append(f"{path}.id: {vendor} differs from the organisation's vendor {org['provider']} "
                                f"while orgDefaultEnabled is true; give one of them (R-LOC-1)")
            patch["provider"] = S.ORGANISATION
        elif vendor is not None and (org_default is False or vendor != current.get("defaultVendorName")):
            patch["provider"] = vendor
        elif org_default is False and current["orgDefaultEnabled"]:
            patch["provider"] = current.get("defaultVendorName", P.NO_PROVIDER)   # pin today's vendor
        org_fb = bool_field(body, "orgFailureBehaviorEnabled", path, problems)
        fb = body.get("failureBehavior")
        if org_fb:
            if fb is not None and fb != org["failureBehavior"]:
                problems.append(f"{path}.failureBehavior: {S.fmt(fb)} differs from the organisation's "
                                f"{org['failureBehavior']} while orgFailureBehaviorEnabled is true; give one of them (R-ORG-3)")
            patch["failureBehavior"] = S.ORGANISATION
        elif fb is not None and (org_fb is False or fb != current["failureBehavior"]):
            patch["failureBehavior"] = fb
        elif org_fb is False and current["orgFailureBehaviorEnabled"]:
            patch["failureBehavior"] = current["failureBehavior"]
        if patch or problems:
            self._loc_change(loc_id, patch, problems=problems)
        return Response(200, {"jobId": job_id()})


def register(router: Router, sim) -> WebexApi:
    """Mount the Webex Calling API subset under /v1 (see the module docstring)."""
    api = WebexApi(sim)
    cfg = "/v1/telephony/config"
    routes: list[tuple[str, str, Callable]] = [
        ("GET", "/v1/people", api.list_people),
        ("GET", "/v1/people/{personId}", api.get_person),
        ("GET", "/v1/people/{personId}/features/callRecording", api.get_person_recording),
        ("PUT", "/v1/people/{personId}/features/callRecording", api.put_person_recording),
        ("GET", "/v1/locations", api.list_locations),
        ("GET", "/v1/locations/{locationId}", api.get_location),
        ("GET", f"{cfg}/virtualLines", api.list_virtual_lines),
        ("GET", f"{cfg}/virtualLines/{{virtualLineId}}/callRecording", api.get_vl_recording),
        ("PUT", f"{cfg}/virtualLines/{{virtualLineId}}/callRecording", api.put_vl_recording),
        ("GET", f"{cfg}/callRecording", api.get_org_recording),
        ("PUT", f"{cfg}/callRecording", api.put_org_recording),
        ("GET", f"{cfg}/callRecording/vendors", api.get_org_vendors),
        ("PUT", f"{cfg}/callRecording/vendor", api.put_org_vendor),
        ("GET", f"{cfg}/callRecording/regions", api.get_regions),
        ("GET", f"{cfg}/callRecording/vendorUsers", api.org_vendor_users),
        ("GET", f"{cfg}/callRecording/complianceAnnouncement", api.get_org_compliance),
        ("PUT", f"{cfg}/callRecording/complianceAnnouncement", api.put_org_compliance),
        ("GET", f"{cfg}/callRecording/announcements", api.get_org_announcements),
        ("PUT", f"{cfg}/callRecording/announcements", api.put_org_announcements),
        ("GET", f"{cfg}/callRecording/vendors/{{vendorId}}/termsOfService", api.get_terms),
        ("PUT", f"{cfg}/callRecording/vendors/{{vendorId}}/termsOfService", api.put_terms),
        ("GET", f"{cfg}/locations/{{locationId}}/callRecording/vendors", api.get_location_vendors),
        ("PUT", f"{cfg}/locations/{{locationId}}/callRecording/vendor", api.put_location_vendor),
        ("GET", f"{cfg}/locations/{{locationId}}/callRecording/vendorUsers", api.location_vendor_users),
        ("GET", f"{cfg}/locations/{{locationId}}/callRecording/complianceAnnouncement",
         api.get_location_compliance),
        ("PUT", f"{cfg}/locations/{{locationId}}/callRecording/complianceAnnouncement",
         api.put_location_compliance),
    ]
    for method, pattern, handler in routes:
        router.add(method, pattern, handler)
    from .webex_features import register_features     # hunt groups, queues, attendants (issue 25)

    register_features(router, api)
    return api
