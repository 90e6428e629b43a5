"""Call recording settings (src/mppsim/rules/settings.py): the rules of spec sections 1-3, the store,
GET/PUT of a person's settings. Pure Python, no Qt, no pjsua2."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from mppsim.app.org import OrgError, load_org, parse_org
from mppsim.rules import broadworks as BW
from mppsim.rules import providers as P
from mppsim.rules.effective import (ALWAYS, ALWAYS_PAUSE, FAILURE_BEHAVIORS, MODES, NEVER, ON_DEMAND,
                                 ON_DEMAND_USER_START, EffectiveSettings, Selective)
from mppsim.rules.settings import LEGAL_NOTICE, SettingsError, SettingsStore, validate_org

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo-org.yaml"
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
# R-USR-7 platform info = the BroadWorks ids generated for the test org (src/mppsim/rules/broadworks.py)
SP, HQ, BR = BW.service_provider_id("test-org"), BW.group_id("test-org", "hq"), BW.group_id("test-org", "br")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def org_data(**recording) -> dict:
    """A small org: alice (Professional, mpp + app), bob (Basic, app), nol (no licence),
    virtual lines desk (on alice's mpp) and app (on bob's webex-app); 2 locations."""
    d = {
        "organisation": {"name": "Test Org"},
        "locations": [{"id": "hq", "name": "HQ"},
                      {"id": "br", "name": "Branch", "country": "DE", "language": "de_de"}],
        "users": [
            {"id": "alice", "name": "Alice", "extension": "1001", "location": "hq",
             "devices": [{"type": "mpp"}, {"type": "webex-app"}]},
            {"id": "bob", "name": "Bob", "extension": "1002", "location": "br", "licence": "Basic",
             "devices": [{"type": "webex-app"}]},
            {"id": "nol", "name": "No Licence", "extension": "1003", "location": "hq", "licence": None,
             "devices": [{"type": "mpp"}]},
        ],
        "virtual_lines": [
            {"id": "desk", "name": "Desk Line", "extension": "1100", "location": "hq",
             "assigned_to": {"user": "alice", "device": "mpp"}},
            {"id": "app", "name": "App Line", "extension": "1101", "location": "br", "language": "fr_fr",
             "assigned_to": {"user": "bob", "device": "webex-app"}},
        ],
    }
    if recording:
        d["organisation"]["recording"] = recording
    return d


def make_store(data: dict | None = None, clock: Clock | None = None) -> SettingsStore:
    return SettingsStore.from_org(parse_org(data or org_data()), clock=clock or Clock())


def dump(store: SettingsStore) -> str:
    return json.dumps(store.export(), sort_keys=True)


def refused(fn, *args, **kwargs) -> SettingsError:
    with pytest.raises(SettingsError) as ei:
        fn(*args, **kwargs)
    return ei.value


def org_errors(data: dict) -> list[str]:
    with pytest.raises(OrgError) as ei:
        parse_org(data)
    return ei.value.errors


@pytest.fixture
def store() -> SettingsStore:
    return make_store()


@pytest.fixture
def demo() -> SettingsStore:
    return SettingsStore.from_org(load_org(DEMO), clock=Clock())


# -- the demo ---------------------------------------------------------------------------------


def test_demo_effective_settings(demo):
    """The demo org: Dubber Go, compliance off, one mode per user (R-ORG-1, R-USR-2)."""
    e = demo.effective_all()
    assert {k: (v.enabled, v.mode) for k, v in e.items()} == {
        "alice": (True, ALWAYS_PAUSE), "bob": (True, ON_DEMAND_USER_START), "carol": (True, NEVER),
        "dave": (True, ALWAYS), "sales": (True, ALWAYS)}
    assert e["alice"].notification == "Beep" and not e["alice"].repeat_enabled
    assert e["bob"].announce_internal and e["bob"].announce_pstn
    assert e["dave"].repeat_enabled and e["dave"].repeat_interval == 30
    assert all(v.provider == "Dubber" and v.provider_tier == "Go" for v in e.values())
    assert all(v.compliance.inbound_pstn is False and v.compliance.outbound_pstn is False for v in e.values())
    assert e["sales"].devices == ("mpp",) and e["alice"].devices == ("mpp", "webex-app")
    assert [v.records for v in e.values()] == [True, True, False, True, True]


def test_effective_settings_round_trip_as_json(demo):
    for e in demo.effective_all().values():
        assert EffectiveSettings.from_dict(json.loads(json.dumps(e.to_dict()))) == e


# -- 1. prerequisites and providers ------------------------------------------------------------


def test_r_pre_1_recording_is_on_by_default(store):
    """R-PRE-1: an org without any recording block can record: provider Dubber (R-ORG-1) ready."""
    org = store.get_org()
    assert org["provider"] == "Dubber" and "Dubber" in org["termsAccepted"]
    store.put_person("alice", {"enabled": True, "record": "Always"})
    assert store.effective("alice").records


def test_r_pre_2_only_professional_or_basic_licence_can_be_enabled(store):
    """R-PRE-2"""
    e = refused(store.put_person, "nol", {"enabled": True, "record": "Always"})
    assert e.errors == ["people.nol.callRecording.enabled: cannot enable recording for 'nol': licence 'None'; "
                        "only users with a Webex Calling Professional or Basic licence can be recorded (R-PRE-2)"]
    store.put_person("bob", {"enabled": True, "record": "Always"})      # Basic is fine
    store.put_person("alice", {"enabled": True})                        # Professional too
    store.put_person("nol", {"enabled": False})                         # staying off is fine


def test_r_pre_2_in_the_org_file():
    """R-PRE-2: the org file is refused with the file path of the field."""
    d = org_data()
    d["users"][2]["callRecording"] = {"enabled": True}
    errs = org_errors(d)
    assert len(errs) == 1 and errs[0].startswith("users[2].callRecording.enabled: cannot enable") and "R-PRE-2" in errs[0]


def test_r_pre_3_legal_notice_when_enabling(store):
    """R-PRE-3: enabling a line reminds the administrator of the legal requirements."""
    assert LEGAL_NOTICE in store.put_person("alice", {"enabled": True})
    assert LEGAL_NOTICE not in store.put_person("alice", {"record": "Always"})


def test_r_prv_1_provider_choices(store):
    """R-PRV-1: Dubber, Imagicle, CallCabinet (and Webex, R-PRV-9) plus None."""
    assert P.PROVIDER_CHOICES == ("Dubber", "Imagicle", "CallCabinet", "Webex", "None")
    e = refused(store.set_org, {"provider": "Acme"})
    assert e.errors == ["organisation.recording.provider: 'Acme' is not allowed; "
                        "allowed: Dubber, Imagicle, CallCabinet, Webex, None (R-PRV-1)"]


def test_r_prv_2_dubber_tiers():
    """R-PRV-2: Go is free, 30 days, only the user sees recordings; paid tiers unlimited, admins too."""
    go = P.DUBBER_TIERS["Go"]
    assert go.free and go.retention_days == 30 and not go.admins_see_recordings
    for name in ("Team", "Premier", "Standard", "AI"):
        t = P.DUBBER_TIERS[name]
        assert not t.free and t.retention_days is None and t.admins_see_recordings
    assert not P.admins_see_recordings("Dubber", "Go") and P.admins_see_recordings("Dubber", "Team")
    s = make_store(org_data(tier="Premier"))
    assert s.effective("alice").provider_tier == "Premier"
    e = refused(s.set_org, {"tier": "Gold"})
    assert e.errors == ["organisation.recording.tier: 'Gold' is not allowed; "
                        "allowed: Go, Team, Premier, Standard, AI (R-PRV-2)"]


def test_r_prv_3_retention_expiry_pure_function():
    """R-PRV-3: free -> paid stops deletion; paid -> free deletes 30 days after the change."""
    t, day = T0, timedelta(days=1)
    exp = P.retention_expiry
    assert exp(t, "Go") == t + 30 * day
    assert exp(t, "Team") is None
    assert exp(t, "Go", [(t + 10 * day, "Team")]) is None                       # free -> paid in time
    assert exp(t, "Go", [(t + 31 * day, "Team")]) == t + 30 * day               # too late: deleted
    assert exp(t, "Team", [(t + 100 * day, "Go")]) == t + 130 * day             # paid -> free
    assert exp(t, "Team", [(t + 100 * day, "Go"), (t + 110 * day, "AI")]) is None
    assert exp(t, "Team", [(t - day, "Go")]) is None                            # before: irrelevant
    assert exp(t, "Go", [(t + day, "Go")]) == t + 30 * day                      # free -> free


def test_r_prv_3_store_tracks_tier_changes():
    """R-PRV-3: the store records Dubber tier changes and answers retention per recording."""
    clock = Clock()
    s = make_store(clock=clock)
    rec = T0 + timedelta(days=1)
    assert s.retention_expiry(rec) == rec + timedelta(days=30)
    clock.now = T0 + timedelta(days=5)
    s.set_org({"tier": "Team"})
    assert s.retention_expiry(rec) is None
    clock.now = T0 + timedelta(days=40)
    s.set_org({"tier": "Go"})
    assert s.retention_expiry(rec) == clock.now + timedelta(days=30)


@pytest.mark.parametrize("region, ok", [("US", True), ("EU", True), ("EUN", True), ("JP", False), ("UK", False)])
def test_r_prv_4_imagicle_regions(region, ok):
    """R-PRV-4: Imagicle only in the US, EU and EUN regions."""
    d = org_data(provider="Imagicle", termsAccepted=["Imagicle"], region=region)
    if ok:
        assert make_store(d).get_org()["provider"] == "Imagicle"
    else:
        assert org_errors(d) == [f"organisation.recording.provider: Imagicle is not available in region {region!r}; "
                                 f"Imagicle is available in: US, EU, EUN (R-PRV-4)"]


def test_r_prv_5_callcabinet_us_only(store):
    """R-PRV-5: CallCabinet only for customers hosted in the US region; region changes are checked too."""
    store.accept_terms("CallCabinet")
    store.set_org({"provider": "CallCabinet"})
    before = dump(store)
    e = refused(store.set_org, {"region": "EU"})
    assert e.errors == ["organisation.recording.provider: CallCabinet is not available in region 'EU'; "
                        "CallCabinet is available in: US (R-PRV-5)"]
    assert dump(store) == before
    s2 = make_store(org_data(region="EU", termsAccepted=["Dubber", "CallCabinet"]))
    e = refused(s2.set_location, "br", {"provider": "CallCabinet"})
    assert e.errors[0].startswith("locations.br.recording.provider: CallCabinet is not available in region 'EU'")


def test_r_prv_6_dubber_accounts_created_automatically(store):
    """R-PRV-6: enabling a user with Dubber creates the user's Dubber account; the admin who
    enabled it becomes a Dubber administrator."""
    assert store.get_org()["accounts"] == {}
    store.put_person("alice", {"enabled": True, "record": "Always"}, admin="admin@test-org.example")
    acc = store.get_org()["accounts"]["Dubber"]
    assert acc["administrators"] == ["admin@test-org.example"]
    assert acc["users"]["alice"] == {
        "product": "Webex Calling", "externalType": "BroadWorks", "serviceProvider": SP,
        "externalGroup": HQ, "externalIdentifier": "alice@test-org.example", "lineType": "user", "automatic": True}
    assert store.effective("alice").recording_blocked is None
    store.put_person("alice", {"enabled": False})                   # R-USR-1: recordings stay
    assert "alice" in store.get_org()["accounts"]["Dubber"]["users"]


def test_r_prv_6_manual_providers_fail_until_provisioned():
    """R-PRV-6: Imagicle / CallCabinet users are not created automatically; recording fails
    visibly until the administrator provisions them."""
    s = make_store(org_data(provider="Imagicle", termsAccepted=["Imagicle"]))
    notices = s.put_person("alice", {"enabled": True, "record": "Always"})
    assert any("create the Imagicle account" in n and "R-PRV-6" in n for n in notices)
    e = s.effective("alice")
    assert e.records and e.recording_blocked == (
        "no Imagicle account for alice: Imagicle accounts are provisioned manually on the provider side; "
        "recording fails until the administrator creates one (R-PRV-6)")
    assert "Imagicle" not in s.get_org()["accounts"] or "alice" not in s.get_org()["accounts"]["Imagicle"]["users"]


def test_r_prv_7_terms_not_accepted_is_a_409(store):
    """R-PRV-7: choosing a provider whose terms are not accepted is refused like the API's 409,
    naming the provider and exactly what accepting shares."""
    before = dump(store)
    e = refused(store.set_org, {"provider": "Imagicle"})
    assert e.status == 409
    assert e.errors == ["organisation.recording.provider: Imagicle: terms of service not accepted; accept "
                        "Imagicle's terms first (termsAccepted); accepting shares with Imagicle: customer name, "
                        "the user's location time zone, first name, last name, e-mail (R-PRV-7)"]
    assert dump(store) == before
    assert store.accept_terms("Imagicle") == ("customer name", "the user's location time zone",
                                              "first name", "last name", "e-mail")
    store.set_org({"provider": "Imagicle"})
    assert store.effective("alice").provider == "Imagicle"


def test_r_prv_7_terms_for_a_location_provider_and_withdrawal(store):
    """R-PRV-7: a location's provider needs accepted terms too; the terms of a provider in use
    cannot be withdrawn."""
    e = refused(store.set_location, "br", {"provider": "CallCabinet"})
    assert e.status == 409 and e.errors[0].startswith("locations.br.recording.provider: CallCabinet: terms")
    e = refused(store.set_org, {"termsAccepted": []})
    assert e.status == 409 and "Dubber: terms of service not accepted" in e.errors[0]


def test_r_prv_7_status_400_when_mixed_with_other_errors(store):
    """R-PRV-7: 409 only when the terms are the only problem."""
    e = refused(store.set_org, {"provider": "Imagicle", "failureBehavior": "PANIC"})
    assert e.status == 400 and len(e.errors) == 2


def test_r_prv_8_partner_admin_not_shared_across_customers():
    """R-PRV-8: the same partner administrator on two customers' Dubber accounts is a conflict."""
    a, b = make_store(), make_store()
    a.put_person("alice", {"enabled": True}, admin="partner@reseller.example")
    b.put_person("alice", {"enabled": True}, admin="Partner@Reseller.example")
    accounts = a.provider_accounts("acme") + b.provider_accounts("globex")
    assert P.partner_admin_conflicts(accounts) == [
        "Dubber: administrator 'partner@reseller.example' is used by several customers (acme, globex); "
        "a partner administrator may administer one customer's Dubber account only (R-PRV-8)"]
    # the same admin for one customer, or on different providers, is fine
    assert P.partner_admin_conflicts([P.ProviderAccount("acme", "Dubber", ("x@p",)),
                                      P.ProviderAccount("acme", "Dubber", ("x@p",)),
                                      P.ProviderAccount("globex", "Imagicle", ("x@p",))]) == []


def test_r_prv_9_webex_as_provider():
    """R-PRV-9: Webex keeps recordings one year, 100 GB per organisation; no third-party terms."""
    w = P.profile("Webex")
    assert (w.retention_days, w.storage_limit_gb, w.terms_required) == (365, 100, False)
    s = make_store(org_data(provider="Webex"))
    assert s.effective("alice").provider == "Webex" and s.effective("alice").provider_tier is None
    assert s.retention_expiry(T0) == T0 + timedelta(days=365)
    assert P.retention_expiry(T0, "Go", provider="Imagicle") is None


# -- 2. organisation and location --------------------------------------------------------------


def test_r_org_1_dubber_preselected(store):
    """R-ORG-1"""
    assert store.get_org()["provider"] == "Dubber"
    assert all(e.provider == "Dubber" for e in store.effective_all().values())


def test_r_org_2_turning_off_needs_confirmation(store):
    """R-ORG-2: provider None only with the explicit confirmation."""
    before = dump(store)
    e = refused(store.set_org, {"provider": "None"})
    assert e.errors == ["organisation.recording.provider: turning call recording off needs confirmation: give "
                        "confirmOff: true (confirm_off=True) to confirm \"I understand that turning off call "
                        "recording removes the feature for all users\" (R-ORG-2)"]
    assert dump(store) == before
    store.set_org({"provider": "None"}, confirm_off=True)
    assert store.effective("alice").provider is None and "confirmOff" not in store.get_org()
    store.set_org({"provider": "Dubber"})
    store.set_org({"provider": None, "confirmOff": True})        # the field does it too; null = None
    assert store.get_org()["provider"] == "None"


def test_r_org_2_in_the_org_file():
    """R-ORG-2: an org file with provider None must confirm it; to_org writes the confirmation."""
    assert org_errors(org_data(provider="None"))[0].startswith("organisation.recording.provider: turning call "
                                                                 "recording off needs confirmation")
    org = parse_org(org_data(provider="None", confirmOff=True))
    s = SettingsStore.from_org(org)
    assert s.get_org()["provider"] == "None"
    assert s.to_org(org).recording == {"provider": "None", "confirmOff": True}


def test_r_org_3_failure_behavior_org_and_location_override(store):
    """R-ORG-3: failureBehavior at organisation level, overridable per location."""
    assert store.effective("alice").failure_behavior == FAILURE_BEHAVIORS[0]
    store.set_org({"failureBehavior": "END_CALL_WITH_ANNOUNCEMENT"})
    store.set_location("br", {"failureBehavior": "PROCEED_CALL_WITH_ANNOUNCEMENT"})
    assert store.effective("alice").failure_behavior == "END_CALL_WITH_ANNOUNCEMENT"
    assert store.effective("bob").failure_behavior == "PROCEED_CALL_WITH_ANNOUNCEMENT"
    store.set_location("br", {"failureBehavior": "organisation"})
    assert store.effective("bob").failure_behavior == "END_CALL_WITH_ANNOUNCEMENT"
    e = refused(store.set_location, "br", {"failureBehavior": "HANG_UP"})
    assert e.errors == ["locations.br.recording.failureBehavior: 'HANG_UP' is not allowed; allowed: organisation, "
                        "PROCEED_WITH_CALL_NO_ANNOUNCEMENT, PROCEED_CALL_WITH_ANNOUNCEMENT, "
                        "END_CALL_WITH_ANNOUNCEMENT (R-ORG-3)"]


def test_r_loc_1_location_inherits_or_overrides_provider(store):
    """R-LOC-1: a location inherits the org's provider, or picks another one, or None."""
    assert store.get_location("br")["provider"] == "organisation"
    store.accept_terms("Imagicle")
    store.set_org({"provider": "Imagicle"})
    assert store.effective("bob").provider == "Imagicle"          # inherited
    store.set_location("br", {"provider": "Dubber"})
    assert store.effective("bob").provider == "Dubber" and store.effective("alice").provider == "Imagicle"
    store.set_location("br", {"provider": "None"})
    assert store.effective("bob").provider is None
    assert not store.effective("bob").records


def test_r_cmp_1_compliance_org_and_location_specific(store):
    """R-CMP-1: compliance announcement off by default, set at organisation level, overridable
    per location; separate inbound / outbound PSTN switches."""
    c = store.effective("alice").compliance
    assert (c.inbound_pstn, c.outbound_pstn) == (False, False)
    store.set_org({"compliance": {"inboundPSTNCallsEnabled": True}})
    assert store.effective("alice").compliance.inbound_pstn and not store.effective("alice").compliance.outbound_pstn
    assert store.effective("bob").compliance.inbound_pstn                 # inherits
    store.set_location("br", {"compliance": {"outboundPSTNCallsEnabled": True,
                                             "customAnnouncementFile": "branch.wav"}})
    cb = store.effective("bob").compliance
    assert (cb.inbound_pstn, cb.outbound_pstn, cb.custom_file) == (False, True, "branch.wav")
    # the API's location shape pastes in: useOrgSettingsEnabled true = use organisation settings
    store.set_location("br", {"compliance": {"useOrgSettingsEnabled": True, "inboundPSTNCallsEnabled": False}})
    assert store.get_location("br")["compliance"] == "organisation"
    assert store.effective("bob").compliance.inbound_pstn


@pytest.mark.parametrize("delay, ok", [(0, True), (15, True), (60, True), (61, False), (-1, False), ("5", False)])
def test_r_cmp_2_compliance_delay_at_most_60_seconds(store, delay, ok):
    """R-CMP-2: the outbound compliance announcement delay is 0..60 s."""
    patch = {"compliance": {"outboundPSTNCallsEnabled": True, "outboundPSTNCallsDelayEnabled": True,
                            "delayInSeconds": delay}}
    if ok:
        store.set_org(patch)
        c = store.effective("alice").compliance
        assert c.outbound_delay_enabled and c.delay_seconds == delay
    else:
        e = refused(store.set_org, patch)
        assert e.errors[0].startswith("organisation.recording.compliance.delayInSeconds: ")
        assert "; allowed: 0-60" in e.errors[0] and e.errors[0].endswith("(R-CMP-2)")
        e = refused(store.set_location, "hq", patch)
        assert e.errors[0].startswith("locations.hq.recording.compliance.delayInSeconds: ")


def test_r_cmp_5_announcement_language_of_the_line(store):
    """R-CMP-5: a user's own language; a virtual line's own language, not its user's."""
    assert store.effective("alice").language == "en_us"
    assert store.effective("bob").language == "de_de"     # from the location
    assert store.effective("app").language == "fr_fr"     # the virtual line's, bob's is de_de
    assert store.effective("desk").language == "en_us"


# -- 3. user and virtual line --------------------------------------------------------------------


def test_r_usr_1_enabling_starts_cleared_and_off_clears(store):
    """R-USR-1"""
    store.put_person("alice", {"enabled": True, "record": "Always with Pause/Resume",
                               "notification": {"enabled": True, "type": "Beep"}})
    store.put_person("alice", {"enabled": False})
    off = store.get_person("alice")
    assert off["record"] == "Never" and off["notification"] == {"enabled": False, "type": "None"}
    store.put_person("alice", {"enabled": True})
    on = store.get_person("alice")
    assert on["enabled"] and on["record"] == "Never" and on["notification"]["type"] == "None"


def test_r_usr_1_settings_given_with_enabled_false_are_refused(store):
    """R-USR-1: a line that is off keeps cleared settings: values with enabled false are refused."""
    e = refused(store.put_person, "alice", {"record": "Always"})
    assert e.errors == ["people.alice.callRecording.record: 'Always' cannot be set with enabled: false: recording "
                        "is off for this line; give enabled: true to enable it; allowed: 'Never' (R-USR-1)"]
    store.put_person("alice", {"enabled": True, "record": "Always"})
    e = refused(store.put_person, "alice", {"enabled": False, "repeat": {"interval": 30}})
    assert e.errors == ["people.alice.callRecording.repeat.interval: 30 cannot be set with enabled: false: turning "
                        "recording off clears the line's settings; allowed: 20 (R-USR-1)"]
    store.put_person("alice", {"enabled": False, "record": "Never"})   # defaults are fine


@pytest.mark.parametrize("mode", MODES)
def test_r_usr_2_every_mode_accepted(store, mode):
    """R-USR-2: Never, Always, Always with Pause/Resume, On Demand, On Demand with User Initiated Start."""
    store.put_person("alice", {"enabled": True, "record": mode})
    assert store.effective("alice").mode == mode


def test_r_usr_2_unknown_mode_lists_the_allowed(store):
    """R-USR-2"""
    e = refused(store.put_person, "alice", {"enabled": True, "record": "Sometimes"})
    assert e.errors == ["people.alice.callRecording.record: 'Sometimes' is not allowed; allowed: Never, Always, "
                        "Always with Pause/Resume, On Demand, On Demand with User Initiated Start (R-USR-2)"]


def test_r_usr_3_record_voicemail(store):
    """R-USR-3"""
    store.put_person("alice", {"enabled": True, "record": "Always", "recordVoicemailEnabled": True})
    assert store.effective("alice").record_voicemail


def test_r_usr_4_start_stop_announcement_switches(store):
    """R-USR-4: PSTN and internal switches are independent."""
    store.put_person("alice", {"enabled": True, "startStopAnnouncement": {"pstnCallsEnabled": True}})
    e = store.effective("alice")
    assert (e.announce_pstn, e.announce_internal) == (True, False)
    store.put_person("alice", {"startStopAnnouncement": {"internalCallsEnabled": True, "pstnCallsEnabled": False}})
    e = store.effective("alice")
    assert (e.announce_pstn, e.announce_internal) == (False, True)


def test_r_usr_5_pause_resume_notification(store):
    """R-USR-5: none, beep or announcement; a disabled notification is none."""
    store.put_person("alice", {"enabled": True, "record": "Always with Pause/Resume",
                               "notification": {"enabled": True, "type": "Play Announcement"}})
    assert store.effective("alice").notification == "Play Announcement"
    store.put_person("alice", {"notification": {"enabled": False}})
    assert store.effective("alice").notification == "None"
    e = refused(store.put_person, "alice", {"notification": {"type": "Tone"}})
    assert e.errors == ["people.alice.callRecording.notification.type: 'Tone' is not allowed; "
                        "allowed: None, Beep, Play Announcement (R-USR-5)"]


@pytest.mark.parametrize("view, value, ok", [
    ("control_hub", 10, True), ("control_hub", 90, True), ("control_hub", 9, False), ("control_hub", 91, False),
    ("api", 10, True), ("api", 1800, True), ("api", 91, True), ("api", 9, False), ("api", 1801, False),
])
def test_r_usr_6_repeat_interval_range_depends_on_view(store, view, value, ok):
    """R-USR-6: Control Hub 10-90 s, the API 10-1800 s."""
    store.put_person("alice", {"enabled": True})
    patch = {"repeat": {"enabled": True, "interval": value}}
    if ok:
        store.put_person("alice", patch, view=view)
        assert store.effective("alice").repeat_interval == value
    else:
        e = refused(store.put_person, "alice", patch, view=view)
        rng = "10-90 (Control Hub" if view == "control_hub" else "10-1800 (API"
        assert e.errors == [f"people.alice.callRecording.repeat.interval: {value} is out of range; "
                            f"allowed: {rng}, R-USR-6)"]


def test_r_usr_6_default_20_and_api_value_survives_control_hub_edit(store):
    """R-USR-6: default 20 s; a value set through the API stays when Control Hub edits other fields."""
    store.put_person("alice", {"enabled": True, "repeat": {"enabled": True}})
    assert store.effective("alice").repeat_interval == 20
    store.put_person("alice", {"repeat": {"interval": 600}}, view="api")
    store.put_person("alice", {"recordVoicemailEnabled": True}, view="control_hub")
    assert store.effective("alice").repeat_interval == 600
    with pytest.raises(ValueError):
        store.put_person("alice", {}, view="web")


def test_r_usr_7_platform_info_is_read_only(store):
    """R-USR-7: serviceProvider / externalGroup / externalIdentifier are shown and read-only."""
    got = store.get_person("bob")
    assert (got["serviceProvider"], got["externalGroup"], got["externalIdentifier"]) == (SP, BR, "bob@test-org.example")
    store.put_person("bob", got)                                  # unchanged values are fine
    store.put_person("bob", {"serviceProvider": "test-org", "externalGroup": "br", "externalIdentifier": "bob"})
    # ^ what mppsim generated before issue 11 still loads (older org files)
    before = dump(store)
    e = refused(store.put_person, "bob", {"externalGroup": "hq", "serviceProvider": "x"})
    assert e.errors == [
        "people.bob.callRecording.externalGroup: read-only (call recording platform info, R-USR-7); "
        f"it is '{BR}' and cannot be changed",
        "people.bob.callRecording.serviceProvider: read-only (call recording platform info, R-USR-7); "
        f"it is '{SP}' and cannot be changed"]
    assert dump(store) == before


def test_r_usr_7_provider_account_must_match_platform_info():
    """R-USR-7: a mismatch in the provider portal makes recording fail; fixing it makes it work."""
    s = make_store(org_data(provider="Imagicle", termsAccepted=["Imagicle"]))
    s.put_person("alice", {"enabled": True, "record": "Always"})
    s.set_provider_account("Imagicle", "alice", {"serviceProvider": SP, "externalGroup": "x",
                                                 "externalIdentifier": "alice@test-org.example"})
    assert s.effective("alice").recording_blocked == f"Imagicle account for alice: externalGroup 'x' != '{HQ}' (R-USR-7)"
    s.set_provider_account("Imagicle", "alice", {"serviceProvider": SP, "externalGroup": HQ,
                                                 "externalIdentifier": "alice@test-org.example", "externalType": "SIP"})
    assert s.effective("alice").recording_blocked == (
        "Imagicle account for alice: externalType 'SIP' != 'BroadWorks' (R-USR-7)")
    s.set_provider_account("Imagicle", "alice", {"serviceProvider": SP, "externalGroup": HQ,
                                                 "externalIdentifier": "alice@test-org.example"})
    assert s.effective("alice").recording_blocked is None
    assert s.effective("alice").platform == (SP, HQ, "alice@test-org.example")
    s.set_provider_account("Imagicle", "alice", None)               # deleted on the provider side
    assert s.effective("alice").recording_blocked.startswith("no Imagicle account for alice")


def test_r_usr_7_provider_account_errors(store):
    """R-USR-7: an account names every portal field; unknown lines are refused."""
    e = refused(store.set_provider_account, "Imagicle", "zed", {"externalGroup": "hq"})
    assert e.errors == [
        "organisation.recording.accounts.Imagicle.users.zed.serviceProvider: missing; required "
        "(the value the provider portal holds, R-USR-7)",
        "organisation.recording.accounts.Imagicle.users.zed.externalIdentifier: missing; required "
        "(the value the provider portal holds, R-USR-7)"]
    e = refused(store.set_provider_account, "Imagicle", "zed",
                {"serviceProvider": "a", "externalGroup": "b", "externalIdentifier": "c"})
    assert e.errors[0].startswith("organisation.recording.accounts.Imagicle.users.zed: 'zed' is not a user or virtual line")


def test_r_usr_8_selective_only_for_always_modes(store):
    """R-USR-8: selectiveCallRecordingSettings applies only to Always and Always with Pause/Resume."""
    sel = {"enabled": True, "recordInboundInternalCallsEnabled": False, "recordOutboundExternalCallsEnabled": False}
    store.put_person("alice", {"enabled": True, "record": "Always", "selectiveCallRecordingSettings": sel})
    assert store.effective("alice").selective == Selective(False, True, True, False)
    store.put_person("alice", {"record": "Always with Pause/Resume"})
    assert store.effective("alice").selective is not None
    e = refused(store.put_person, "alice", {"record": "On Demand"})
    assert e.errors == ["people.alice.callRecording.selectiveCallRecordingSettings.enabled: selective call recording "
                        "applies only to record: Always, Always with Pause/Resume; record is 'On Demand' (R-USR-8)"]
    store.put_person("alice", {"record": "On Demand", "selectiveCallRecordingSettings": {"enabled": False}})
    assert store.effective("alice").selective is None
    e = refused(store.put_person, "alice", {"selectiveCallRecordingSettings": {"enabled": True}})
    assert "(R-USR-8)" in e.errors[0]


def test_r_vl_1_virtual_line_off_by_default_with_every_option(store):
    """R-VL-1: a virtual line starts off and supports every option of a primary line."""
    assert not store.effective("desk").enabled and store.get_person("desk")["record"] == "Never"
    full = {"enabled": True, "record": "On Demand with User Initiated Start", "recordVoicemailEnabled": True,
            "notification": {"enabled": True, "type": "Play Announcement"}, "repeat": {"enabled": True, "interval": 45},
            "startStopAnnouncement": {"internalCallsEnabled": True, "pstnCallsEnabled": True}}
    store.put_person("desk", full)
    e = store.effective("desk")
    assert (e.kind, e.owner, e.devices, e.mode, e.notification, e.repeat_interval, e.announce_pstn) == (
        "virtual_line", "alice", ("mpp",), ON_DEMAND_USER_START, "Play Announcement", 45, True)
    assert e.platform == (SP, HQ, "desk@test-org.example")


def test_r_vl_2_virtual_line_needs_a_provider(store):
    """R-VL-2: no provider at organisation or at the line's location -> refused."""
    store.set_location("hq", {"provider": "None"})
    before = dump(store)
    e = refused(store.put_person, "desk", {"enabled": True, "record": "Always"})
    assert e.errors == ["virtualLines.desk.callRecording.enabled: cannot enable recording on virtual line 'desk': "
                        "no recording provider at the organisation or at its location 'hq' (provider None); "
                        "select a provider first (R-VL-2)"]
    assert dump(store) == before
    store.put_person("alice", {"enabled": True})               # a person may be configured anyway
    store.set_org({"provider": "None"}, confirm_off=True)
    store.set_location("hq", {"provider": "Dubber"})           # a provider at the location is enough
    store.put_person("desk", {"enabled": True, "record": "Always"})
    assert store.effective("desk").provider == "Dubber"


def test_r_vl_2_in_the_org_file():
    """R-VL-2"""
    d = org_data(provider="None", confirmOff=True)
    d["virtual_lines"][0]["callRecording"] = {"enabled": True, "record": "Always"}
    errs = org_errors(d)
    assert len(errs) == 1 and errs[0].startswith("virtual_lines[0].callRecording.enabled: cannot enable") \
        and errs[0].endswith("(R-VL-2)")


def test_r_vl_3_webex_app_virtual_line_only_always(store):
    """R-VL-3: a virtual line on a Webex App supports only Always."""
    for mode in (ALWAYS_PAUSE, ON_DEMAND, ON_DEMAND_USER_START):
        e = refused(store.put_person, "app", {"enabled": True, "record": mode})
        assert e.errors == [f"virtualLines.app.callRecording.record: {mode!r} is not allowed on a virtual line shown "
                            f"in the Webex App (bob's webex-app); allowed: Always, Never (R-VL-3)"]
    store.put_person("app", {"enabled": True, "record": ALWAYS})
    store.put_person("desk", {"enabled": True, "record": ON_DEMAND})        # on a desk phone: any mode
    assert store.effective("app").devices == ("webex-app",)


def test_r_vl_4_dubber_account_for_virtual_line_of_a_user_not_enabled(store):
    """R-VL-4: enabling a virtual line whose user is not enabled creates a Dubber account for it;
    listening needs a team."""
    assert not store.effective("alice").enabled
    notices = store.put_person("desk", {"enabled": True, "record": "Always"})
    acc = store.get_org()["accounts"]["Dubber"]["users"]
    assert list(acc) == ["desk"]
    assert acc["desk"]["lineType"] == "virtual_line" and acc["desk"]["teamRequired"] is True
    assert any("(alice is not enabled)" in n and "team" in n and "R-VL-4" in n for n in notices)


# -- the store -------------------------------------------------------------------------------------


def test_every_error_reported_with_its_path_and_nothing_applied(store):
    before = dump(store)
    e = refused(store.put_person, "alice", {
        "enabled": "yes", "record": "Sometimes", "repeat": {"interval": 5}, "notification": 3, "colour": "blue"},
        view="control_hub")
    assert e.status == 400
    assert e.errors == [
        "people.alice.callRecording.enabled: 'yes' is not allowed; allowed: true, false",
        "people.alice.callRecording.record: 'Sometimes' is not allowed; allowed: Never, Always, "
        "Always with Pause/Resume, On Demand, On Demand with User Initiated Start (R-USR-2)",
        "people.alice.callRecording.repeat.interval: 5 is out of range; allowed: 10-90 (Control Hub, R-USR-6)",
        "people.alice.callRecording.notification: 3 is not allowed; must be a mapping with keys enabled, type",
        "people.alice.callRecording.colour: unknown key; allowed: enabled, record, recordVoicemailEnabled, "
        "startStopAnnouncementEnabled, notification, repeat, startStopAnnouncement, "
        "selectiveCallRecordingSettings, callRecordingAccessSettings, postCallRecordingSettings, announcements",
    ]
    assert dump(store) == before and store.version == 0
    assert str(e).startswith("invalid recording settings:\n  - people.alice")


def test_unknown_line_and_location(store):
    assert refused(store.put_person, "zed", {}).status == 404
    assert refused(store.set_location, "mars", {}).status == 404
    with pytest.raises(KeyError):
        store.effective("zed")


def test_partial_put_changes_only_the_given_fields(store):
    store.put_person("alice", {"enabled": True, "record": "Always", "repeat": {"enabled": True, "interval": 30},
                               "callRecordingAccessSettings": {"viewAndPlayRecordingsEnabled": True}})
    before = store.get_person("alice")
    store.put_person("alice", {"repeat": {"interval": 40}})
    after = store.get_person("alice")
    assert after["repeat"] == {"enabled": True, "interval": 40}
    assert {k: v for k, v in after.items() if k != "repeat"} == {k: v for k, v in before.items() if k != "repeat"}


def test_version_and_subscribers(store):
    seen: list[list[str]] = []
    unsubscribe = store.subscribe(seen.append)
    store.put_person("alice", {"enabled": True, "record": "Always"})
    assert store.version == 1 and seen == [["alice"]]
    store.set_org({"compliance": {"inboundPSTNCallsEnabled": True}})
    assert seen[-1] == ["alice", "bob", "nol", "desk", "app"]
    store.set_location("br", {"failureBehavior": "END_CALL_WITH_ANNOUNCEMENT"})
    assert seen[-1] == ["bob", "app"]
    store.put_person("alice", {"callRecordingAccessSettings": {"shareRecordingsEnabled": True}})
    assert seen[-1] == [] and store.version == 4           # a change not in the effective settings
    with pytest.raises(SettingsError):
        store.put_person("alice", {"record": "Sometimes"})
    assert store.version == 4 and len(seen) == 4           # nothing for a refused change
    unsubscribe()
    store.put_person("alice", {"record": "Never"})
    assert len(seen) == 4


def test_a_failing_subscriber_does_not_undo_the_change(store):
    calls = []

    def broken(ids):
        raise RuntimeError("boom")
    store.subscribe(broken)
    store.subscribe(calls.append)
    store.put_person("alice", {"enabled": True})
    assert store.effective("alice").enabled and calls == [["alice"]]


def test_recorder_targets_per_provider():
    s = make_store(org_data(recorders={"Dubber": "sip:127.0.0.1:5080;transport=tcp"}))
    assert s.effective("alice").recorder == "sip:127.0.0.1:5080;transport=tcp"
    s.set_org({"recorders": {"Dubber": None}})
    assert s.effective("alice").recorder is None
    e = refused(s.set_org, {"recorders": {"Dubber": "http://x"}})
    assert e.errors == ['organisation.recording.recorders.Dubber: \'http://x\' is not allowed; '
                        'must be a SIP URI, e.g. "sip:127.0.0.1:5080;transport=tcp"']


def test_to_org_round_trips_through_the_org_file(store, tmp_path):
    """Settings changed in the store survive to_org -> YAML -> load_org -> from_org."""
    store.accept_terms("Imagicle")
    store.put_person("alice", {"enabled": True, "record": "Always", "repeat": {"enabled": True, "interval": 600}})
    store.put_person("desk", {"enabled": True, "record": "Always"})
    store.set_location("br", {"provider": "Imagicle", "compliance": {"inboundPSTNCallsEnabled": True}})
    store.set_provider_account("Imagicle", "bob", {"serviceProvider": "test-org", "externalGroup": "br",
                                                   "externalIdentifier": "bob"})
    org = store.to_org(parse_org(org_data()))
    assert org.user("alice").call_recording == {"enabled": True, "record": "Always",
                                                "repeat": {"enabled": True, "interval": 600}}
    assert org.user("bob").call_recording == {}
    p = tmp_path / "org.yaml"
    p.write_text(yaml.safe_dump(org.to_dict(), sort_keys=False))
    again = SettingsStore.from_org(load_org(p), clock=Clock())
    a, b = store.export(), again.export()
    a.pop("tierChanges"), b.pop("tierChanges")
    assert a == b


def test_validate_org_uses_file_paths():
    d = org_data()
    d["locations"][1]["recording"] = {"provider": "CallCabinet"}
    assert validate_org(parse_org(org_data())) == []
    errs = org_errors(d)
    assert errs[0].startswith("locations[1].recording.provider: CallCabinet: terms of service not accepted")


# -- hypothesis: invariants of changes ------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_any = st.one_of(st.booleans(), st.integers(-5, 2000), st.none(), st.sampled_from(["", "x", "Beep"]))


def _maybe_bad(good):
    """Mostly valid values, sometimes anything."""
    return st.one_of(good, good, good, _any)


_patches = st.fixed_dictionaries({}, optional={
    "enabled": _maybe_bad(st.booleans()),
    "record": _maybe_bad(st.sampled_from(MODES + ("Sometimes",))),
    "recordVoicemailEnabled": _maybe_bad(st.booleans()),
    "notification": st.fixed_dictionaries({}, optional={
        "enabled": _maybe_bad(st.booleans()),
        "type": _maybe_bad(st.sampled_from(["None", "Beep", "Play Announcement"]))}),
    "repeat": st.fixed_dictionaries({}, optional={
        "enabled": _maybe_bad(st.booleans()), "interval": st.integers(0, 2000)}),
    "startStopAnnouncement": st.fixed_dictionaries({}, optional={
        "internalCallsEnabled": _maybe_bad(st.booleans()), "pstnCallsEnabled": _maybe_bad(st.booleans())}),
    "selectiveCallRecordingSettings": st.fixed_dictionaries({}, optional={
        "enabled": _maybe_bad(st.booleans()), "recordInboundExternalCallsEnabled": _maybe_bad(st.booleans())}),
    "callRecordingAccessSettings": st.fixed_dictionaries({}, optional={
        "downloadRecordingsEnabled": _maybe_bad(st.booleans())}),
    "postCallRecordingSettings": st.fixed_dictionaries({}, optional={
        "transcriptEnabled": _maybe_bad(st.booleans())}),
    "announcements": st.fixed_dictionaries({}, optional={
        "useLocationLevelEnabled": _maybe_bad(st.booleans()),
        "pause": st.fixed_dictionaries({"type": _maybe_bad(st.sampled_from(["DEFAULT", "CUSTOM"]))})}),
    "externalGroup": st.sampled_from([HQ, BR, "x"]),
})
_lines = st.sampled_from(["alice", "bob", "nol", "desk", "app"])
_views = st.sampled_from(["api", "control_hub"])
_HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


@_HYP
@given(steps=st.lists(st.tuples(_lines, _patches, _views), min_size=1, max_size=6))
def test_invalid_change_leaves_settings_byte_for_byte_unchanged(steps):
    """An invalid change applies nothing: export, version and effective settings unchanged."""
    store = make_store()
    for line, patch, view in steps:
        before, version = dump(store), store.version
        try:
            store.put_person(line, patch, view=view)
        except SettingsError as e:
            assert e.errors and dump(store) == before and store.version == version
        else:
            assert store.version == version + 1


@_HYP
@given(steps=st.lists(st.tuples(_lines, _patches, _views), min_size=1, max_size=6))
def test_every_accepted_setting_round_trips_through_put_get(steps):
    """Each field of an accepted PUT reads back as given; a GET PUT back changes nothing."""
    store = make_store()
    for line, patch, view in steps:
        try:
            store.put_person(line, patch, view=view)
        except SettingsError:
            continue
        got = _leaves(store.get_person(line))
        for path, value in _leaves(patch).items():
            # the API's GET says "None" where its PUT takes null (wxc-sdk sends null); enabled
            # without a type means Beep
            want = value
            if (path, value) == ("notification.type", None):
                want = "Beep" if got["notification.enabled"] and patch["notification"].get("enabled") else "None"
            assert got[path] == want, path
        before = dump(store)
        store.put_person(line, json.loads(json.dumps(store.get_person(line))))
        assert dump(store) == before


_org_patches = st.fixed_dictionaries({}, optional={
    "provider": _maybe_bad(st.sampled_from(P.PROVIDER_CHOICES)),
    "confirmOff": st.booleans(),
    "tier": _maybe_bad(st.sampled_from(list(P.DUBBER_TIERS))),
    "termsAccepted": st.lists(st.sampled_from(P.PROVIDERS), max_size=3),
    "region": _maybe_bad(st.sampled_from(P.REGIONS)),
    "failureBehavior": _maybe_bad(st.sampled_from(FAILURE_BEHAVIORS)),
    "compliance": st.fixed_dictionaries({}, optional={"delayInSeconds": st.integers(-2, 70),
                                                       "inboundPSTNCallsEnabled": _maybe_bad(st.booleans())}),
})
_loc_patches = st.fixed_dictionaries({}, optional={
    "provider": _maybe_bad(st.sampled_from(("organisation",) + P.PROVIDER_CHOICES)),
    "failureBehavior": _maybe_bad(st.sampled_from(("organisation",) + FAILURE_BEHAVIORS)),
    "compliance": st.one_of(st.just("organisation"), st.fixed_dictionaries({}, optional={
        "delayInSeconds": st.integers(-2, 70), "outboundPSTNCallsEnabled": st.booleans()})),
})


@_HYP
@given(steps=st.lists(st.one_of(
    st.tuples(st.just("org"), _org_patches),
    st.tuples(st.sampled_from(["hq", "br"]), _loc_patches),
    st.tuples(_lines, _patches)), min_size=1, max_size=8))
def test_invalid_org_or_location_change_applies_nothing(steps):
    """Any level: a refused change leaves the export byte-for-byte as it was; an accepted one
    keeps every state rule (re-validating the exported org file passes)."""
    store = make_store()
    base = parse_org(org_data())
    for target, patch in steps:
        before = dump(store)
        try:
            if target == "org":
                store.set_org(patch)
            elif target in ("hq", "br"):
                store.set_location(target, patch)
            else:
                store.put_person(target, patch)
        except SettingsError:
            assert dump(store) == before
    assert validate_org(store.to_org(base)) == []


# -- the Webex API's field names (issue 12) --------------------------------------------------------


def test_r_usr_4_start_stop_announcement_enabled_is_the_apis_single_switch(store):
    """R-USR-4: the API's startStopAnnouncementEnabled reads true when either switch is on; a
    changed value sets both switches; an unchanged one (a GET written back) changes nothing; a
    body whose object contradicts its changed flag is refused."""
    store.put_person("alice", {"enabled": True, "record": "Always"})
    assert store.get_person("alice")["startStopAnnouncementEnabled"] is False
    store.put_person("alice", {"startStopAnnouncementEnabled": True})
    got = store.get_person("alice")
    assert got["startStopAnnouncement"] == {"internalCallsEnabled": True, "pstnCallsEnabled": True}
    assert got["startStopAnnouncementEnabled"] is True
    eff = store.effective("alice")
    assert eff.announce_internal and eff.announce_pstn
    # read-modify-write of the object only: the unchanged flag in the body is an echo
    got["startStopAnnouncement"]["pstnCallsEnabled"] = False
    store.put_person("alice", got)
    assert store.get_person("alice")["startStopAnnouncement"] == {"internalCallsEnabled": True,
                                                                  "pstnCallsEnabled": False}
    # read-modify-write of the flag only: the unchanged object is an echo
    got = store.get_person("alice")
    got["startStopAnnouncementEnabled"] = False
    store.put_person("alice", got)
    assert not any(store.get_person("alice")["startStopAnnouncement"].values())
    store.put_person("alice", {"startStopAnnouncement": {"internalCallsEnabled": True}})
    e = refused(store.put_person, "alice", {"startStopAnnouncementEnabled": False,
                                            "startStopAnnouncement": {"pstnCallsEnabled": True}})
    assert e.errors == ["people.alice.callRecording.startStopAnnouncementEnabled: false contradicts "
                        "startStopAnnouncement {'internalCallsEnabled': True, 'pstnCallsEnabled': True} "
                        "given in the same change; give one of them (R-USR-4)"]


def test_r_usr_1_turning_off_accepts_the_get_body_written_back(store):
    """R-USR-1 with the API's read-modify-write: a GET's body with enabled: false is accepted
    (its values are echoes) and clears the settings; a new value given with enabled: false is
    still refused."""
    store.put_person("alice", {"enabled": True, "record": "Always", "recordVoicemailEnabled": True})
    body = store.get_person("alice")
    body["enabled"] = False
    store.put_person("alice", body)
    assert store.get_person("alice")["record"] == "Never"
    assert store.get_person("alice")["recordVoicemailEnabled"] is False
    e = refused(store.put_person, "alice", {"enabled": False, "record": "Always"})
    assert "(R-USR-1)" in e.errors[0]


def test_r_usr_5_null_notification_type_means_none(store):
    """R-USR-5: the API's PUT takes null where its GET says "None" (wxc-sdk sends null); turning
    the notification on without a type gives Beep, as the API documents."""
    store.put_person("alice", {"enabled": True, "record": "Always with Pause/Resume",
                               "notification": {"enabled": True, "type": "Play Announcement"}})
    store.put_person("alice", {"notification": {"enabled": False, "type": None}})
    assert store.get_person("alice")["notification"] == {"enabled": False, "type": "None"}
    store.put_person("alice", {"notification": {"enabled": True}})
    assert store.get_person("alice")["notification"] == {"enabled": True, "type": "Beep"}
    store.put_person("alice", {"notification": {"enabled": True, "type": "None"}})   # said explicitly
    assert store.get_person("alice")["notification"] == {"enabled": True, "type": "None"}


def test_r_usr_8_old_selective_names_accepted_with_notice(store):
    """R-USR-8: mppsim's old names (recordInboundInternal ...) still work through put_person,
    with a deprecation notice; the settings read back under the API's names."""
    notices = store.put_person("alice", {"enabled": True, "record": "Always", "selectiveCallRecordingSettings": {
        "enabled": True, "recordOutboundExternal": False}})
    assert any("recordOutboundExternal: deprecated name; write recordOutboundExternalCallsEnabled" in n
               for n in notices)
    sel = store.get_person("alice")["selectiveCallRecordingSettings"]
    assert sel["recordOutboundExternalCallsEnabled"] is False and "recordOutboundExternal" not in sel
    assert store.effective("alice").selective == Selective(True, True, True, False)


def test_post_call_and_announcement_settings_stored_and_validated(store):
    """postCallRecordingSettings and announcements: the API's blocks, read back; CUSTOM files are
    refused with the reason."""
    store.put_person("alice", {"enabled": True, "record": "Always",
                               "postCallRecordingSettings": {"transcriptEnabled": True},
                               "announcements": {"useLocationLevelEnabled": False, "start": {"type": "DEFAULT"}}})
    got = store.get_person("alice")
    assert got["postCallRecordingSettings"] == {"summaryAndActionItemsEnabled": False, "transcriptEnabled": True}
    assert got["announcements"]["useLocationLevelEnabled"] is False
    e = refused(store.put_person, "alice", {"announcements": {"stop": {"type": "CUSTOM"}}})
    assert e.errors == ["people.alice.callRecording.announcements.stop.type: 'CUSTOM' is not allowed; "
                        "allowed: DEFAULT (custom announcement files are not simulated; mppsim plays its own)"]


def test_concurrent_changes_reach_subscribers_in_commit_order(store):
    """Two threads change the store at once (the HTTP API serves requests on threads): the
    subscriber (the simulator's push to the agents) runs for each change in the order the changes
    were made, so a slow push of the older state never lands after the newer one."""
    import threading
    import time

    pushed: list[str] = []
    first = threading.Event()

    def push(_lines):
        mode = store.effective("alice").mode       # what the push sends ...
        if not first.is_set():
            first.set()
            time.sleep(0.3)                        # ... slowly, the first time
        pushed.append(mode)

    store.subscribe(push)
    a = threading.Thread(target=store.put_person, args=("alice", {"enabled": True, "record": "Always"}))
    a.start()
    assert first.wait(2)
    b = threading.Thread(target=store.put_person, args=("alice", {"record": "Never"}))
    b.start()
    a.join(3)
    b.join(3)
    assert store.effective("alice").mode == "Never"
    assert pushed == ["Always", "Never"]
