"""The Webex Calling API's hunt groups, call queues and auto attendants: list and details (issue 25).

    GET /v1/telephony/config/huntGroups                                   {"huntGroups": [...]}
    GET /v1/telephony/config/locations/{locationId}/huntGroups/{id}
    GET /v1/telephony/config/queues (and /callQueues, the issue's name)   {"queues": [...]}
    GET /v1/telephony/config/locations/{locationId}/queues/{id}
    GET /v1/telephony/config/autoAttendants                               {"autoAttendants": [...]}
    GET /v1/telephony/config/locations/{locationId}/autoAttendants/{id}

Lists take Webex's filters (locationId, name, phoneNumber, start, max) and page like the rest
of app/webex_api.py; wxc-sdk's ``telephony.huntgroup``, ``.callqueue`` and ``.auto_attendant``
read them unchanged. Field names and enum strings are Webex's (wxc-sdk's models); what the org
file does not say is given Webex's defaults. Read only: the features come from the org file.
"""
from __future__ import annotations

from typing import Any, Callable

from .features import RING_SECONDS, Feature
from .http_server import HttpError, Request, Response, Router
from .webex_wire import page

KIND_IDS = {"hunt_group": "HUNT_GROUP", "call_queue": "CALL_QUEUE", "auto_attendant": "AUTO_ATTENDANT"}
MENU_ACTIONS = {"transfer": "TRANSFER_WITHOUT_PROMPT", "operator": "TRANSFER_TO_OPERATOR",
                "extension_dial": "EXTENSION_DIALING", "repeat": "REPEAT_MENU", "exit": "EXIT"}
# Webex's language codes for the org file's (an MPP's locale spelling)
LANGUAGE_NAMES = {"en_us": "English", "en_gb": "English (United Kingdom)", "pl_pl": "Polish",
                  "pt_br": "Portuguese (Brazil)", "pt_pt": "Portuguese", "bg_bg": "Bulgarian",
                  "de_de": "German", "fr_fr": "French", "es_es": "Spanish"}


class FeatureApi:
    def __init__(self, api) -> None:
        self.api = api                  # app/webex_api.WebexApi: ids, org, look-ups
        self.org = api.org
        self.ids = api.ids
        for f in self.org.features:
            self.ids.make(KIND_IDS[f.kind], f.id)

    def wid(self, f: Feature) -> str:
        return self.ids.make(KIND_IDS[f.kind], f.id)

    def _common(self, f: Feature, listing: bool) -> dict[str, Any]:
        loc = self.org.location(f.location)
        d: dict[str, Any] = {"id": self.wid(f), "name": f.name, "enabled": True,
                             "language": LANGUAGE_NAMES.get(f.language, f.language), "languageCode": f.language,
                             "tollFreeNumber": False}
        if f.number:
            d["phoneNumber"] = f.number
        if f.extension:
            d["extension"] = f.extension
        if listing:
            d["locationName"], d["locationId"] = loc.name, self.ids.locations[loc.id]
        else:
            d["timeZone"] = loc.timezone
            first, _, last = f.name.partition(" ")
            d["firstName"], d["lastName"] = first, last or first
        return d

    def _agents(self, f: Feature) -> list[dict]:
        out = []
        for m in f.members:
            try:
                u = self.org.user(m.line)
                wid, kind, first_last = self.ids.people[u.id], "PEOPLE", u.name
            except KeyError:
                v = self.org.virtual_line(m.line)
                wid, kind, first_last = self.ids.virtual_lines[v.id], "VIRTUAL_LINE", v.name
            first, _, last = first_last.partition(" ")
            a = {"id": wid, "type": kind, "firstName": first, "lastName": last or first, "extension": m.extension}
            if f.policy == "weighted":
                a["weight"] = str(m.weight)
            out.append(a)
        return out

    def _hunt_group(self, f: Feature, listing: bool) -> dict:
        d = self._common(f, listing)
        if listing:
            return d
        rings = max(1, round(f.advance_after / RING_SECONDS))
        na = f.no_answer
        d["callPolicies"] = {
            "policy": f.policy.upper(), "waitingEnabled": False, "groupBusyEnabled": False,
            "noAnswer": {"nextAgentEnabled": len(f.members) > 1, "nextAgentRings": rings,
                         "forwardEnabled": na.action != "busy", "destination": na.target or "",
                         "numberOfRings": rings * max(1, len(f.members)), "systemMaxNumberOfRings": 20,
                         "destinationVoicemailEnabled": na.action == "voicemail"},
            "businessContinuityRedirect": {"enabled": False, "destinationVoicemailEnabled": False},
        }
        d["agents"] = self._agents(f)
        d["huntGroupCallerIdForOutgoingCallsEnabled"] = False
        return d

    def _queue(self, f: Feature, listing: bool) -> dict:
        d = self._common(f, listing)
        if listing:
            return d
        of = f.overflow
        d["callPolicies"] = {"routingType": "PRIORITY_BASED", "policy": f.policy.upper(),
                             "callBounce": {"callBounceEnabled": True,
                                            "callBounceMaxRings": max(1, round(f.advance_after / RING_SECONDS))}}
        d["queueSettings"] = {
            "queueSize": f.size,
            "overflow": {"action": {"busy": "PERFORM_BUSY_TREATMENT", "transfer": "TRANSFER_TO_PHONE_NUMBER",
                                    "voicemail": "TRANSFER_TO_PHONE_NUMBER"}[of.action],
                         "sendToVoicemail": of.action == "voicemail", "transferNumber": of.target or "",
                         "isTransferNumberSet": of.target is not None, "overflowAfterWaitEnabled": False},
            "welcomeMessage": {"enabled": f.welcome, "alwaysEnabled": False, "greeting": "DEFAULT"},
            "comfortMessage": {"enabled": f.comfort_every is not None, "greeting": "DEFAULT",
                               "timeBetweenMessages": int(f.comfort_every or 10)},
            "mohMessage": {"normalSource": {"enabled": True, "greeting": "DEFAULT"},
                           "alternateSource": {"enabled": False, "greeting": "DEFAULT"}},
        }
        d["agents"] = self._agents(f)
        d["allowCallWaitingForAgentsEnabled"] = False
        return d

    def _auto_attendant(self, f: Feature, listing: bool) -> dict:
        d = self._common(f, listing)
        if listing:
            return d
        def menu(items) -> dict:
            keys = [{"key": k, "action": MENU_ACTIONS[a.action], **({"value": a.target} if a.target else {})}
                    for k, a in items]
            return {"greeting": "DEFAULT", "extensionEnabled": any(a.action == "extension_dial" for _k, a in items),
                    "keyConfigurations": keys}
        # Webex names a location schedule here; mppsim's schedule is the attendant's own (org file)
        d.update(businessSchedule=f"{f.name} business hours" if f.business_hours else "",
                 extensionDialing="ENTERPRISE", nameDialing="ENTERPRISE", businessHoursMenu=menu(f.menu))
        if f.business_hours:
            d["afterHoursMenu"] = menu(f.after_hours_menu)
        return d

    # -- handlers --------------------------------------------------------------------------

    def _list(self, req: Request, kind: str, key: str, render: Callable[[Feature, bool], dict]) -> Response:
        self.api._check_org(req)
        items = self.org.features_of(kind)
        if (loc := req.arg("locationId")) is not None:
            items = [f for f in items if self.ids.locations.get(f.location) == loc]
        if (name := req.arg("name")) is not None:
            items = [f for f in items if f.name.lower().startswith(name.lower())]
        if (number := req.arg("phoneNumber")) is not None:
            items = [f for f in items if number in (f.extension, f.number, (f.number or "").lstrip("+"))]
        return page(req, [render(f, True) for f in items], key)

    def _details(self, req: Request, kind: str, locationId: str, wid: str, what: str,
                 render: Callable[[Feature, bool], dict]) -> dict:
        self.api._check_org(req)
        loc = self.api._find("LOCATION", locationId, "location")
        fid = self.api._find(KIND_IDS[kind], wid, what)
        f = self.org.feature(fid)
        if f.location != loc:
            raise HttpError(404, "The requested resource could not be found.",
                            [{"description": f"{what} {wid!r} is not in location {locationId!r}", "errorCode": 40400}])
        return render(f, False)

    def list_hunt_groups(self, req: Request) -> Response:
        return self._list(req, "hunt_group", "huntGroups", self._hunt_group)

    def get_hunt_group(self, req: Request, locationId: str, huntGroupId: str) -> dict:
        return self._details(req, "hunt_group", locationId, huntGroupId, "hunt group", self._hunt_group)

    def list_queues(self, req: Request) -> Response:
        return self._list(req, "call_queue", "queues", self._queue)

    def get_queue(self, req: Request, locationId: str, queueId: str) -> dict:
        return self._details(req, "call_queue", locationId, queueId, "call queue", self._queue)

    def list_auto_attendants(self, req: Request) -> Response:
        return self._list(req, "auto_attendant", "autoAttendants", self._auto_attendant)

    def get_auto_attendant(self, req: Request, locationId: str, autoAttendantId: str) -> dict:
        return self._details(req, "auto_attendant", locationId, autoAttendantId, "auto attendant",
                             self._auto_attendant)


def register_features(router: Router, api) -> FeatureApi:
    fa = FeatureApi(api)
    cfg = "/v1/telephony/config"
    for method, pattern, handler in [
        ("GET", f"{cfg}/huntGroups", fa.list_hunt_groups),
        ("GET", f"{cfg}/locations/{{locationId}}/huntGroups/{{huntGroupId}}", fa.get_hunt_group),
        ("GET", f"{cfg}/queues", fa.list_queues),
        ("GET", f"{cfg}/callQueues", fa.list_queues),
        ("GET", f"{cfg}/locations/{{locationId}}/queues/{{queueId}}", fa.get_queue),
        ("GET", f"{cfg}/autoAttendants", fa.list_auto_attendants),
        ("GET", f"{cfg}/locations/{{locationId}}/autoAttendants/{{autoAttendantId}}", fa.get_auto_attendant),
    ]:
        router.add(method, pattern, handler)
    return fa
