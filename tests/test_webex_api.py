"""The Webex Calling API subset (src/mppsim/app/webex_api.py) driven by Cisco's own SDK, wxc-sdk, unchanged:
only ``RestSession.BASE`` points at the simulator. One real Simulator (agent processes, SIP and
RTP on loopback) behind one ApiServer for the module; each test puts back what it changed.

One settings store, three doors (issue 12, "Live"): a PUT through the API reaches the agents (the
next call's softkeys) and the Control Hub view; a change in the view or in Python is what the
next GET returns.
"""
from __future__ import annotations

import base64
import json

import pytest
import requests
from wxc_sdk import WebexSimpleApi
from wxc_sdk.person_settings.call_recording import CallRecordingSetting
from wxc_sdk.rest import RestError, RestSession
from wxc_sdk.telephony.call_recording import FailureBehavior

from mppsim.app.http_server import ApiServer
from tests.helpers import connect, demo_org, hang_up_everything
from mppsim.rules.settings import SettingsError

TOKEN = "test-token-d1"
HQ_USERS = ["Alice Smith", "Bob Jones"]


@pytest.fixture(scope="module")
def running(sim):
    """conftest's `sim` (3 s ring timeout, no voicemail) and the HTTP server on it."""
    server = ApiServer(sim, token=TOKEN).start()
    mp = pytest.MonkeyPatch()
    mp.setattr(RestSession, "BASE", f"{server.url}/v1")     # the one change a wxc-sdk script needs
    yield sim, server
    mp.undo()
    server.stop()


def decoded(wid: str) -> str:
    return base64.b64decode(wid + "=" * (-len(wid) % 4)).decode()


@pytest.fixture
def live(running):
    """The running simulator; a test must leave every person's settings as it found them."""
    sim = running[0]
    before = sim.settings.export()
    yield sim
    hang_up_everything(sim)
    assert sim.settings.export()["people"] == before["people"], "a test left a person changed"


@pytest.fixture
def server(running):
    return running[1]


@pytest.fixture
def api(running) -> WebexSimpleApi:
    return WebexSimpleApi(tokens=TOKEN)


def person_id(api: WebexSimpleApi, email: str) -> str:
    (p,) = list(api.people.list(email=email))
    return p.person_id


def raw(server, method: str, path: str, token: str | None = TOKEN, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{server.url}{path}", headers=headers, timeout=5, **kw)


# -- people, locations --------------------------------------------------------------------------


def test_people_paging_by_absolute_link_and_filters(live, server, api):
    """GET /people?callingData=true with max: wxc-sdk follows the absolute Link rel="next" URL,
    which carries every parameter; email, displayName and locationId filter; ids are opaque
    base64 in Webex's style and GET /people/{id} answers the same person."""
    people = list(api.people.list(calling_data=True, max=1))
    assert [p.display_name for p in people] == ["Alice Smith", "Bob Jones", "Carol Kowalska", "Dave Wilson"]
    assert all(decoded(p.person_id).startswith("ciscospark://us/PEOPLE/") for p in people)
    alice = people[0]
    assert (alice.emails, alice.extension, alice.first_name, alice.last_name) == (
        ["alice@acme-demo.example"], "1001", "Alice", "Smith")

    r = raw(server, "GET", "/v1/people?callingData=true&max=1&displayName=")
    nxt = r.links["next"]["url"]
    assert nxt.startswith(f"{server.url}/v1/people?") and "callingData=true" in nxt and "max=1" in nxt
    assert "start=1" in nxt and "displayName=" in nxt
    assert "locationId" in r.json()["items"][0]                      # callingData=true adds it
    assert "locationId" not in raw(server, "GET", "/v1/people?max=1").json()["items"][0]
    last = raw(server, "GET", "/v1/people?callingData=true&max=2&start=2")
    assert "next" not in last.links and [p["displayName"] for p in last.json()["items"]] == [
        "Carol Kowalska", "Dave Wilson"]

    (hq,) = [loc for loc in api.locations.list() if loc.name == "Headquarters"]
    assert [p.display_name for p in api.people.list(location_id=hq.location_id, calling_data=True)] == HQ_USERS
    assert all(p.location_id == hq.location_id for p in api.people.list(location_id=hq.location_id,
                                                                          calling_data=True))
    assert [p.display_name for p in api.people.list(display_name="car")] == ["Carol Kowalska"]
    assert [p.display_name for p in api.people.list(email="DAVE@acme-demo.example")] == ["Dave Wilson"]
    assert api.people.details(alice.person_id, calling_data=True).display_name == "Alice Smith"
    assert api.locations.details(hq.location_id).time_zone == "America/New_York"
    assert [loc.name for loc in api.locations.list()] == ["Headquarters", "Wroclaw Office"]


def test_unknown_ids_are_404_and_bad_parameters_400(live, api):
    """404 for an id nobody has, in Webex's error shape; max out of range is a 400 naming it."""
    with pytest.raises(RestError) as e:
        api.person_settings.call_recording.read("Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ub2JvZHk")
    assert e.value.response.status_code == 404 and e.value.code == 40400
    assert "person 'Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ub2JvZHk' not found" in e.value.description
    assert e.value.detail.tracking_id.startswith("MPPSIM_")
    with pytest.raises(RestError) as e:
        api.telephony.call_recording.read_terms_of_service("nope")
    assert e.value.response.status_code == 404
    with pytest.raises(RestError) as e:
        api.telephony.call_recording.get_location_vendors("nope")
    assert e.value.response.status_code == 404
    with pytest.raises(RestError) as e:
        list(api.people.list(max=0))
    assert e.value.response.status_code == 400
    assert e.value.description == "max: '0' is not allowed; allowed: a whole number 1-1000"


def test_401_without_the_token(server):
    """Every request needs Authorization: Bearer <token>; wxc-sdk sees a RestError 401."""
    with pytest.raises(RestError) as e:
        list(WebexSimpleApi(tokens="wrong").people.list())
    assert e.value.response.status_code == 401
    assert raw(server, "GET", "/v1/telephony/config/callRecording", token=None).status_code == 401


def test_405_and_415(live, server, api):
    """A known path with another method: 405 with Allow; a body that is not JSON: 415; nothing applied."""
    pid = person_id(api, "alice@acme-demo.example")
    path = f"/v1/people/{pid}/features/callRecording"
    r = raw(server, "DELETE", path)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "PUT"}
    before = live.settings.export()
    r = raw(server, "PUT", path, data="record=Always", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["errors"][0]["errorCode"] == 41500
    assert live.settings.export() == before


# -- a person's settings --------------------------------------------------------------------------


def test_read_modify_write_and_minimal_put_read_back(live, server, api):
    """R-USR-2, R-USR-6: wxc-sdk's read -> change -> configure round trip, then a minimal PUT
    (only `record`): each reads back; the fields not given keep their values; the Python door
    (live.call_recording) and the effective settings agree; PUT answers 204."""
    cr_api = api.person_settings.call_recording
    pid = person_id(api, "alice@acme-demo.example")
    original = live.call_recording("alice")
    try:
        s = cr_api.read(pid)
        assert (s.enabled, s.record, s.notification.notification_type) == (True, "Always with Pause/Resume", "Beep")
        assert (s.service_provider, s.external_group, s.external_identifier) == live.settings.platform_info("alice")
        s.repeat.enabled, s.repeat.interval = True, 600        # the API's range is 10-1800 (R-USR-6)
        s.record_voicemail_enabled = True
        s.selective_call_recording_settings.record_inbound_external_calls_enabled = False
        cr_api.configure(pid, s)
        got = cr_api.read(pid)
        assert (got.repeat.enabled, got.repeat.interval, got.record_voicemail_enabled) == (True, 600, True)
        assert got.selective_call_recording_settings.record_inbound_external_calls_enabled is False
        assert live.call_recording("alice")["repeat"] == {"enabled": True, "interval": 600}
        assert live.settings.effective("alice").repeat_interval == 600

        r = raw(server, "PUT", f"/v1/people/{pid}/features/callRecording", json={"record": "On Demand"})
        assert r.status_code == 204 and r.content == b""
        got = cr_api.read(pid)
        assert got.record == "On Demand" and got.repeat.interval == 600 and got.record_voicemail_enabled
        assert live.settings.effective("alice").mode == "On Demand"

        # the body a GET returned, read-only platform info included, is accepted as is
        body = raw(server, "GET", f"/v1/people/{pid}/features/callRecording").json()
        assert raw(server, "PUT", f"/v1/people/{pid}/features/callRecording", json=body).status_code == 204
        body["externalIdentifier"] = "someone-else"
        r = raw(server, "PUT", f"/v1/people/{pid}/features/callRecording", json=body)
        assert r.status_code == 400 and "externalIdentifier: read-only" in r.json()["message"]
    finally:
        live.settings.put_person("alice", original)


def test_invalid_change_raises_rest_error_and_applies_nothing(live, server, api):
    """R-USR-6, R-USR-2: an invalid PUT raises wxc-sdk's RestError with Webex's code and the
    same rule and words the Control Hub view shows (the store's SettingsError); nothing of the
    body applies, not even its valid parts."""
    pid = person_id(api, "bob@acme-demo.example")
    before = live.settings.export()
    s = api.person_settings.call_recording.read(pid)
    s.record = "Always"                           # valid ...
    s.repeat.enabled, s.repeat.interval = True, 5  # ... but this is not
    with pytest.raises(RestError) as e:
        api.person_settings.call_recording.configure(pid, s)
    assert e.value.response.status_code == 400 and e.value.code == 40000
    want = "people.bob.callRecording.repeat.interval: 5 is out of range; allowed: 10-1800 (API, R-USR-6)"
    assert e.value.description == want
    with pytest.raises(SettingsError) as same:    # the words of the store the view uses
        live.settings.put_person("bob", {"repeat": {"interval": 5}}, view="api")
    assert same.value.errors == [want]
    assert live.settings.export() == before
    assert api.person_settings.call_recording.read(pid).record == "On Demand with User Initiated Start"

    r = raw(server, "PUT", f"/v1/people/{pid}/features/callRecording", json={"record": "Sometimes"})
    assert r.status_code == 400
    err = r.json()
    assert set(err) == {"message", "errors", "trackingId"} and r.headers["TrackingID"] == err["trackingId"]
    assert err["errors"][0]["description"] == (
        "people.bob.callRecording.record: 'Sometimes' is not allowed; allowed: Never, Always, "
        "Always with Pause/Resume, On Demand, On Demand with User Initiated Start (R-USR-2)")
    r = raw(server, "PUT", f"/v1/people/{pid}/features/callRecording", data=b"{not json",
            headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert live.settings.export() == before


def test_virtual_line_list_and_settings(live, server, api):
    """R-VL-1: GET /telephony/config/virtualLines (list key virtualLines) and the virtual line's
    callRecording GET/PUT through wxc-sdk's virtual_lines.call_recording."""
    (sales,) = list(api.telephony.virtual_lines.list())
    assert (sales.display_name, sales.number.extension, sales.location.name) == ("Sales Line", "1100", "Headquarters")
    assert "virtualLines" in raw(server, "GET", "/v1/telephony/config/virtualLines").json()
    vl = api.telephony.virtual_lines.call_recording
    original = live.call_recording("sales")
    try:
        s = vl.read(sales.id)
        assert (s.enabled, s.record, s.external_identifier) == (True, "Always", live.settings.platform_info("sales")[2])
        s.record = "Always with Pause/Resume"
        s.notification.enabled, s.notification.notification_type = True, "Play Announcement"
        vl.configure(sales.id, s)
        got = vl.read(sales.id)
        assert got.record == "Always with Pause/Resume" and got.notification.notification_type == "Play Announcement"
        assert live.settings.effective("sales").mode == "Always with Pause/Resume"
        with pytest.raises(RestError) as e:       # a person's endpoint does not know the line
            api.person_settings.call_recording.read(sales.id)
        assert e.value.response.status_code == 404
    finally:
        live.settings.put_person("sales", original)


# -- organisation and location --------------------------------------------------------------------


def test_org_vendor_terms_location_vendor_and_vendor_users(live, server, api):
    """R-PRV-1, R-PRV-7, R-LOC-1, R-ORG-3: vendors and their ids; choosing Imagicle before its
    terms are accepted is a 409 and changes nothing; after PUT termsOfService the vendor PUT
    answers 200 with a jobId and the org reads Imagicle; a location pins its own vendor and
    failure behaviour; vendorUsers lists the recorded lines (key members)."""
    cr = api.telephony.call_recording
    org_before = live.settings.get_org()
    locs_before = {lid: live.settings.get_location(lid) for lid in ("hq", "wro")}
    vendors = {v.name: v for v in cr.get_org_vendors().vendors}
    assert list(vendors) == ["Dubber", "Imagicle", "CallCabinet", "Webex"]
    info = cr.read()
    assert (info.enabled, info.vendor_name, info.organization.name) == (True, "Dubber", "Acme Demo")
    assert [r.code for r in cr.get_call_recording_regions() if r.default_enabled] == ["US"]
    wro = next(loc.location_id for loc in api.locations.list() if loc.name == "Wroclaw Office")
    try:
        with pytest.raises(RestError) as e:
            cr.set_org_vendor(vendors["Imagicle"].id)
        assert e.value.response.status_code == 409 and "terms of service not accepted" in e.value.description
        assert live.settings.get_org() == org_before
        assert cr.read_terms_of_service(vendors["Imagicle"].id).terms_of_service_enabled is False

        cr.update_terms_of_service(vendors["Imagicle"].id, True)
        assert cr.read_terms_of_service(vendors["Imagicle"].id).terms_of_service_enabled is True
        job = cr.set_org_vendor(vendors["Imagicle"].id, failure_behavior=FailureBehavior.proceed_call_with_announcement)
        assert decoded(job).startswith("ciscospark://us/JOB_ID/")
        assert (cr.read().vendor_name, cr.get_org_vendors().failure_behavior) == (
            "Imagicle", "PROCEED_CALL_WITH_ANNOUNCEMENT")
        assert live.settings.effective("alice").provider == "Imagicle"

        lv = cr.get_location_vendors(wro)
        assert (lv.org_default_enabled, lv.default_vendor_name, lv.org_default_vendor_name) == (True, "Imagicle", "Imagicle")
        cr.set_location_vendor(wro, id=vendors["Webex"].id, failure_behavior=FailureBehavior.end_call_with_announcement)
        lv = cr.get_location_vendors(wro)
        assert (lv.org_default_enabled, lv.default_vendor_name, lv.failure_behavior, lv.org_failure_behavior_enabled) == (
            False, "Webex", "END_CALL_WITH_ANNOUNCEMENT", False)
        assert live.settings.effective("dave").provider == "Webex"
        assert live.settings.effective("dave").failure_behavior == "END_CALL_WITH_ANNOUNCEMENT"

        org_users = {u.first_name: (u.type, u.license_type) for u in cr.list_org_users()}
        assert org_users == {"Alice": ("PEOPLE", "PROFESSIONAL_USER"), "Bob": ("PEOPLE", "PROFESSIONAL_USER"),
                             "Sales": ("VIRTUAL_LINE", "VIRTUAL_PROFILE")}
        assert {u.first_name for u in cr.list_location_users(wro)} == {"Carol", "Dave"}
        assert [u.first_name for u in cr.list_location_users(wro, standard_user_only=True)] == ["Carol"]
        assert "members" in raw(server, "GET", "/v1/telephony/config/callRecording/vendorUsers").json()

        cr.set_location_vendor(wro, org_default_enabled=True, org_failure_behavior_enabled=True)
        assert live.settings.get_location("wro") == locs_before["wro"]
        cr.update(enabled=False)                  # the partner's switch: provider None (R-ORG-2)
        assert cr.read().enabled is False and live.settings.effective("alice").provider is None
        cr.update(enabled=True)
        assert cr.read().vendor_name == "Dubber"  # the preselected provider (R-ORG-1)
    finally:
        live.settings.set_org({"provider": org_before["provider"], "failureBehavior": org_before["failureBehavior"],
                              "termsAccepted": org_before["termsAccepted"]})
        for lid, loc in locs_before.items():
            live.settings.set_location(lid, loc)
    assert live.settings.get_org()["provider"] == "Dubber"


def test_compliance_announcement_org_and_location(live, api):
    """R-CMP-1, R-CMP-2: org compliance read-modify-write; a location switches to its own values
    (useOrgSettingsEnabled false) and back; a delay of 61 s is refused with the view's words."""
    cr = api.telephony.call_recording
    org_before = live.settings.get_org()["compliance"]
    wro = next(loc.location_id for loc in api.locations.list() if loc.name == "Wroclaw Office")
    try:
        c = cr.read_org_compliance_announcement()
        assert (c.inbound_pstncalls_enabled, c.use_custom_announcement_enabled) == (False, False)
        c.inbound_pstncalls_enabled, c.outbound_pstncalls_delay_enabled, c.delay_in_seconds = True, True, 5
        cr.update_org_compliance_announcement(c)
        assert cr.read_org_compliance_announcement().delay_in_seconds == 5
        assert live.settings.effective("alice").compliance.inbound_pstn is True

        loc = cr.read_location_compliance_announcement(wro)
        assert (loc.use_org_settings_enabled, loc.inbound_pstncalls_enabled) == (True, True)
        loc.use_org_settings_enabled, loc.inbound_pstncalls_enabled = False, False
        loc.outbound_pstncalls_enabled = True
        cr.update_location_compliance_announcement(wro, loc)
        got = cr.read_location_compliance_announcement(wro)
        assert (got.use_org_settings_enabled, got.inbound_pstncalls_enabled, got.outbound_pstncalls_enabled) == (
            False, False, True)
        eff = live.settings.effective("dave").compliance
        assert (eff.inbound_pstn, eff.outbound_pstn) == (False, True)
        assert live.settings.effective("alice").compliance.inbound_pstn is True    # hq still the org's

        c.delay_in_seconds = 61
        with pytest.raises(RestError) as e:
            cr.update_org_compliance_announcement(c)
        assert e.value.response.status_code == 400
        assert e.value.description == ("organisation.recording.compliance.delayInSeconds: 61 is out of range; "
                                       "allowed: 0-60 seconds (R-CMP-2)")
        got.use_org_settings_enabled = True
        cr.update_location_compliance_announcement(wro, cr.read_location_compliance_announcement(wro).model_copy(
            update={"use_org_settings_enabled": True, "inbound_pstncalls_enabled": None,
                    "outbound_pstncalls_enabled": None}))
        assert live.settings.get_location("wro")["compliance"] == "organisation"
    finally:
        live.settings.set_org({"compliance": org_before})
        live.settings.set_location("wro", {"compliance": "organisation"})


def test_org_announcements(live, api):
    """GET|PUT /telephony/config/callRecording/announcements: built-in (DEFAULT) files only;
    CUSTOM is refused with the reason."""
    cr = api.telephony.call_recording
    ann = cr.read_org_call_recording_announcement()
    assert ann.start.type == "DEFAULT" and ann.failure_end_with_call.type == "DEFAULT"
    cr.update_org_call_recording_announcement(ann)
    ann.stop.type = "CUSTOM"
    with pytest.raises(RestError) as e:
        cr.update_org_call_recording_announcement(ann)
    assert e.value.description == ("organisation.recording.announcements.stop.type: 'CUSTOM' is not allowed; "
                                   "allowed: DEFAULT (custom announcement files are not simulated; mppsim plays its own)")


# -- live: one store, three doors -----------------------------------------------------------------


def test_api_put_changes_the_phones_softkeys(live, api):
    """R-UX-2, R-UX-3 via the API: dave (Always: no recording softkey); PUT record On Demand
    through wxc-sdk -> the next call on his MPP (a real agent) offers Record; PUT Always back ->
    the next call offers none."""
    pid = person_id(api, "dave@acme-demo.example")
    cr_api = api.person_settings.call_recording
    original = live.call_recording("dave")
    try:
        connect(live, "+48221234567", "dave", "1004")
        live.wait_until(lambda: live.recording_state("dave") is not None, 3, "dave's call recorded")
        assert live.softkeys("dave") == []
        live.hangup("dave")
        hang_up_everything(live)

        cr_api.configure(pid, CallRecordingSetting(record="On Demand"))
        connect(live, "+48221234567", "dave", "1004")
        live.wait_until(lambda: "Record" in live.softkeys("dave"), 3, "dave's Record softkey")
        live.hangup("dave")
        hang_up_everything(live)

        cr_api.configure(pid, CallRecordingSetting(record="Always"))
        connect(live, "+48221234567", "dave", "1004")
        live.wait_until(lambda: live.recording_state("dave") is not None, 3, "dave's call recorded")
        assert live.softkeys("dave") == []
    finally:
        live.settings.put_person("dave", original)


def test_one_store_behind_the_view_python_and_the_api(qtbot, live, api):
    """Issue 12 "Live": an API PUT shows in the Control Hub view at once; a change saved in the
    view, and one made in Python, is what the next GET returns."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QCheckBox, QComboBox, QPushButton

    from mppsim.ui.control_hub import ControlHub

    hub = ControlHub(live)
    qtbot.addWidget(hub)
    hub.show()
    hub.tabs.setCurrentWidget(hub.users_page)
    hub.users_page.select("carol")
    combo = hub.findChild(QComboBox, "ch_user_record")
    pid = person_id(api, "carol@acme-demo.example")
    cr_api = api.person_settings.call_recording
    original = live.call_recording("carol")
    try:
        assert combo.currentData() == "Never"
        cr_api.configure(pid, CallRecordingSetting(record="Always"))
        qtbot.waitUntil(lambda: combo.currentData() == "Always", timeout=3000)

        combo.setCurrentIndex(combo.findData("Never"))
        qtbot.mouseClick(hub.findChild(QPushButton, "ch_save"), Qt.LeftButton)
        assert cr_api.read(pid).record == "Never"

        live.set_call_recording("carol", {"record": "Always"})
        assert cr_api.read(pid).record == "Always"
        qtbot.waitUntil(lambda: combo.currentData() == "Always", timeout=3000)

        # a field new with the API's names: postCallRecordingSettings, shown in the view
        transcript = hub.findChild(QCheckBox, "ch_user_post_transcript")
        assert not transcript.isChecked()
        s = cr_api.read(pid)
        s.post_call_recording_settings.transcript_enabled = True
        cr_api.configure(pid, s)
        qtbot.waitUntil(transcript.isChecked, timeout=3000)
    finally:
        live.settings.put_person("carol", original)


def test_get_is_json_with_the_api_field_names(live, server, api):
    """The person GET carries the API's names (issue 12 alignment): startStopAnnouncementEnabled,
    postCallRecordingSettings, announcements, the selective flags record*CallsEnabled."""
    pid = person_id(api, "bob@acme-demo.example")
    body = raw(server, "GET", f"/v1/people/{pid}/features/callRecording").json()
    assert body["startStopAnnouncementEnabled"] is True            # bob has both switches on
    assert set(body["selectiveCallRecordingSettings"]) == {
        "enabled", "recordInboundInternalCallsEnabled", "recordInboundExternalCallsEnabled",
        "recordOutboundInternalCallsEnabled", "recordOutboundExternalCallsEnabled"}
    assert body["postCallRecordingSettings"] == {"summaryAndActionItemsEnabled": False, "transcriptEnabled": False}
    assert body["announcements"]["useLocationLevelEnabled"] is True
    assert json.loads(json.dumps(body)) == live.call_recording("bob")


def test_a_put_is_atomic_at_every_level(live, server, api):
    """An organisation or location PUT with one bad field applies none of its good ones; every
    problem of the body is reported, each as its own error entry."""
    cr = api.telephony.call_recording
    vendors = {v.name: v.id for v in cr.get_org_vendors().vendors}
    before = live.settings.export()
    cfg = "/v1/telephony/config/callRecording"
    r = raw(server, "PUT", f"{cfg}/vendor", json={"vendorId": vendors["Webex"], "failureBehavior": "PANIC"})
    assert r.status_code == 400
    assert [e["description"] for e in r.json()["errors"]] == [
        "organisation.recording.failureBehavior: 'PANIC' is not allowed; allowed: PROCEED_WITH_CALL_NO_ANNOUNCEMENT, "
        "PROCEED_CALL_WITH_ANNOUNCEMENT, END_CALL_WITH_ANNOUNCEMENT (R-ORG-3)"]
    r = raw(server, "PUT", f"{cfg}/complianceAnnouncement",
            json={"inboundPSTNCallsEnabled": True, "delayInSeconds": 99, "colour": "red"})
    assert r.status_code == 400 and len(r.json()["errors"]) == 2
    assert r.json()["errors"][0]["description"] == (
        "complianceAnnouncement.colour: unknown key; allowed: inboundPSTNCallsEnabled, outboundPSTNCallsEnabled, "
        "outboundPSTNCallsDelayEnabled, delayInSeconds, useCustomAnnouncementEnabled, audioAnnouncementFileId")
    hq = next(loc.location_id for loc in api.locations.list() if loc.name == "Headquarters")
    r = raw(server, "PUT", f"/v1/telephony/config/locations/{hq}/callRecording/vendor",
            json={"id": vendors["Webex"], "orgFailureBehaviorEnabled": "yes"})
    assert r.status_code == 400 and "orgFailureBehaviorEnabled: 'yes' is not allowed" in r.json()["message"]
    assert live.settings.export() == before


def test_custom_compliance_announcement_file_round_trip(monkeypatch, tmp_path):
    """R-CMP-1: the custom compliance announcement the org file names is shown with an id; a
    wxc-sdk read-modify-write keeps it, false switches to the standard one, and true without a
    file is refused. Store only (no agents): a second server on its own org."""
    from types import SimpleNamespace

    from mppsim.app.org import parse_org
    from mppsim.rules.settings import SettingsStore

    data = demo_org().to_dict()
    data["organisation"]["recording"]["compliance"] = {"inboundPSTNCallsEnabled": True,
                                                      "customAnnouncementFile": "announcements/acme.wav"}
    org = parse_org(data)
    store_only = SimpleNamespace(org=org, settings=SettingsStore.from_org(org))
    with ApiServer(store_only, token=TOKEN) as server:
        monkeypatch.setattr(RestSession, "BASE", f"{server.url}/v1")
        cr = WebexSimpleApi(tokens=TOKEN).telephony.call_recording
        c = cr.read_org_compliance_announcement()
        assert c.use_custom_announcement_enabled is True
        assert (c.audio_announcement_file.file_name, c.audio_announcement_file.level) == ("acme.wav", "ORGANIZATION")
        c.delay_in_seconds = 3
        cr.update_org_compliance_announcement(c)                 # sends audioAnnouncementFileId
        got = store_only.settings.get_org()["compliance"]
        assert (got["customAnnouncementFile"], got["delayInSeconds"]) == ("announcements/acme.wav", 3)
        c.use_custom_announcement_enabled = False
        cr.update_org_compliance_announcement(c)
        assert store_only.settings.get_org()["compliance"]["customAnnouncementFile"] is None
        r = raw(server, "PUT", "/v1/telephony/config/callRecording/complianceAnnouncement",
                json={"useCustomAnnouncementEnabled": True})
        assert r.status_code == 400 and "true needs audioAnnouncementFileId" in r.json()["message"]


def test_every_get_body_put_back_unchanged_is_accepted_and_changes_nothing(live, server, api):
    """For every GET|PUT resource: the body a GET returned, read-only fields included, PUT back
    as it is answers 204 and changes no setting."""
    cfg = "/v1/telephony/config"
    paths = [f"/v1/people/{p.person_id}/features/callRecording" for p in api.people.list()]
    paths += [f"{cfg}/virtualLines/{v.id}/callRecording" for v in api.telephony.virtual_lines.list()]
    paths += [f"{cfg}/callRecording", f"{cfg}/callRecording/complianceAnnouncement",
              f"{cfg}/callRecording/announcements"]
    paths += [f"{cfg}/callRecording/vendors/{v.id}/termsOfService"
              for v in api.telephony.call_recording.get_org_vendors().vendors]
    paths += [f"{cfg}/locations/{loc.location_id}/callRecording/complianceAnnouncement"
              for loc in api.locations.list()]
    before = live.settings.export()
    for path in paths:
        body = raw(server, "GET", path).json()
        r = raw(server, "PUT", path, json=body)
        assert r.status_code == 204, (path, r.text)
        assert live.settings.export() == before, path
    assert len(paths) == 4 + 1 + 3 + 4 + 2


def test_random_person_puts_apply_whole_or_not_at_all(tmp_path):
    """Hypothesis over HTTP (store only, no agents): any PUT body either answers 204 and every
    field reads back as given (null type reads "None"), or answers 400/404/409 in Webex's shape
    and changes nothing."""
    from types import SimpleNamespace

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mppsim.rules.settings import SettingsStore
    from test_settings import _leaves, _patches

    org = demo_org()
    store_only = SimpleNamespace(org=org, settings=SettingsStore.from_org(org))
    with ApiServer(store_only, token=TOKEN) as server:
        ids = {u.id: f"/v1/people/{pid}/features/callRecording"
               for u, pid in zip(org.users, [p["id"] for p in raw(server, "GET", "/v1/people").json()["items"]])}

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(who=st.sampled_from(sorted(ids)), body=_patches)
        def check(who, body):
            before = store_only.settings.export()
            r = raw(server, "PUT", ids[who], json=body)
            if r.status_code == 204 and body.get("enabled") is False:
                # R-USR-1: turning recording off clears the settings; values the body repeats
                # (a GET body written back) are accepted, and the line reads as cleared
                got = _leaves(raw(server, "GET", ids[who]).json())
                assert got["enabled"] is False
                assert raw(server, "PUT", ids[who], json={"enabled": False}).status_code == 204
                assert _leaves(raw(server, "GET", ids[who]).json()) == got
            elif r.status_code == 204:
                got = _leaves(raw(server, "GET", ids[who]).json())
                for path, value in _leaves(body).items():
                    want = value
                    if (path, value) == ("notification.type", None):    # null = None; enabled + no type = Beep
                        want = "Beep" if got["notification.enabled"] and body["notification"].get("enabled") else "None"
                    assert got[path] == want, path
            else:
                assert r.status_code in (400, 404, 409), r.text
                err = r.json()
                assert set(err) == {"message", "errors", "trackingId"} and err["errors"][0]["description"]
                assert store_only.settings.export() == before
        check()


def test_async_wxc_sdk_with_concurrent_requests(monkeypatch):
    """wxc-sdk's asyncio API (aiohttp) works unchanged too: its paging and 4 concurrent reads and
    PUTs (one per person) against the threaded server; every PUT lands."""
    import asyncio
    from types import SimpleNamespace

    from wxc_sdk.as_api import AsWebexSimpleApi
    from wxc_sdk.as_rest import AsRestSession

    from mppsim.rules.settings import SettingsStore

    org = demo_org()
    store_only = SimpleNamespace(org=org, settings=SettingsStore.from_org(org))
    with ApiServer(store_only, token=TOKEN) as server:
        monkeypatch.setattr(AsRestSession, "BASE", f"{server.url}/v1")

        async def main():
            async with AsWebexSimpleApi(tokens=TOKEN) as api:
                people = await api.people.list(calling_data=True, max=1)
                cr = api.person_settings.call_recording
                settings = await asyncio.gather(*[cr.read(p.person_id) for p in people])
                for s in settings:
                    s.record_voicemail_enabled = s.enabled
                await asyncio.gather(*[cr.configure(p.person_id, s) for p, s in zip(people, settings)])
                return [p.display_name for p in people]

        names = asyncio.run(main())
    assert names == ["Alice Smith", "Bob Jones", "Carol Kowalska", "Dave Wilson"]
    assert [store_only.settings.get_person(u)["recordVoicemailEnabled"] for u in ("alice", "bob", "carol", "dave")] == [
        True, True, True, True]


def test_api_and_control_hub_refuse_with_the_same_words(qtbot, live, server, api):
    """R-USR-8 through both doors: with selective recording on, record On Demand is refused by
    the API (400) and by the Control Hub view's Save with the same description, and nothing
    changes either way."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QComboBox, QLabel, QPushButton

    from mppsim.ui.control_hub import ControlHub

    pid = person_id(api, "alice@acme-demo.example")
    url = f"/v1/people/{pid}/features/callRecording"
    original = live.call_recording("alice")
    try:
        assert raw(server, "PUT", url, json={"selectiveCallRecordingSettings": {
            "enabled": True, "recordInboundExternalCallsEnabled": False}}).status_code == 204
        before = live.settings.export()
        r = raw(server, "PUT", url, json={"record": "On Demand"})
        assert r.status_code == 400
        (description,) = [e["description"] for e in r.json()["errors"]]
        assert description.endswith("selective call recording applies only to record: Always, "
                                    "Always with Pause/Resume; record is 'On Demand' (R-USR-8)")

        hub = ControlHub(live)
        qtbot.addWidget(hub)
        hub.show()
        hub.tabs.setCurrentWidget(hub.users_page)
        hub.users_page.select("alice")
        combo = hub.findChild(QComboBox, "ch_user_record")
        combo.setCurrentIndex(combo.findData("On Demand"))
        qtbot.mouseClick(hub.findChild(QPushButton, "ch_save"), Qt.LeftButton)
        shown = hub.findChild(QLabel, "ch_errors")
        assert shown.isVisible() and description in shown.text()
        assert live.settings.export() == before
    finally:
        live.settings.put_person("alice", original)
