"""pytest-qt: the Control Hub view (src/mppsim/ui/control_hub.py) over a real Simulator's settings store.

Changes made in the view apply live to the running agents; every refused change shows the
store's reason next to its field and in ``ch_errors``, and changes nothing.
"""
from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QPushButton, QSpinBox

from mppsim.app.org import parse_org
from mppsim.app.simulator import Simulator
from tests.helpers import DEMO_ORG, demo_org
from mppsim.rules import providers as P
from mppsim.rules.settings import CONFIRM_OFF_TEXT, LEGAL_NOTICE
from mppsim.ui.control_hub import ControlHub


@pytest.fixture
def make_hub(qtbot, tmp_path):
    """make_hub(org=None, start=False) -> ControlHub over a real Simulator (stopped after).
    Tests that only look at the settings do not start the agents."""
    sims = []

    def make(org=None, start=False):
        sim = Simulator(org or demo_org(voicemail=False), run_dir=tmp_path / f"run{len(sims)}",
                        recorder=start)
        sims.append(sim)
        if start:
            sim.start()
        hub = ControlHub(sim)
        qtbot.addWidget(hub)
        hub.show()
        return hub
    yield make
    for sim in sims:
        sim.stop()


def org_with(edit):
    """The demo org (no voicemail) after ``edit(data)`` on its file form."""
    data = copy.deepcopy(demo_org(voicemail=False).to_dict())
    edit(data)
    return parse_org(data, DEMO_ORG)


def find(w, cls, name):
    widget = w.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name}"
    return widget


def click(qtbot, w, name):
    qtbot.mouseClick(find(w, QPushButton, name), Qt.LeftButton)


def choose(combo: QComboBox, data) -> None:
    """Pick an item as a user does (activated is emitted only by user interaction)."""
    i = combo.findData(data)
    assert i >= 0, f"{combo.objectName()} has no item {data!r}"
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def refused(hub, label: str, *texts: str) -> str:
    """The field's error label shows each text, and so does the page-level ch_errors."""
    error = find(hub, QLabel, label)
    assert error.isVisible(), f"{label} is hidden; ch_errors: {find(hub, QLabel, 'ch_errors').text()}"
    for t in texts:
        assert t in error.text(), error.text()
        assert t in find(hub, QLabel, "ch_errors").text()
    return error.text()


def user_page(hub, line):
    hub.tabs.setCurrentWidget(hub.users_page)
    hub.users_page.select(line)


def test_r_usr_2_switch_carol_to_on_demand_applies_live(qtbot, make_hub):
    """R-USR-2, R-UX-4: carol Never -> On Demand with User Initiated Start in the view, Save; the
    store has it and the running agent got it: a PSTN call she answers offers Start recording."""
    hub = make_hub(start=True)
    sim = hub.sim
    assert sim.call_recording("carol")["record"] == "Never"
    user_page(hub, "carol")
    find(hub, QComboBox, "ch_user_record").setCurrentIndex(
        find(hub, QComboBox, "ch_user_record").findData("On Demand with User Initiated Start"))
    click(qtbot, hub, "ch_save")
    assert not find(hub, QLabel, "ch_errors").isVisible()
    assert sim.call_recording("carol")["record"] == "On Demand with User Initiated Start"
    assert "On Demand with User Initiated Start" in find(hub, QLabel, "ch_user_status").text()

    sim.dial("+14155550100", "1003")
    sim.wait_for("carol", "ringing", 3)
    sim.answer("carol")
    sim.wait_for("carol", "connected", 3)
    sim.wait_until(lambda: sim.menu_items("carol") == ["Start recording"], 3, "carol's Start recording")
    sim.hangup("carol")


def test_r_usr_6_repeat_interval_5_is_refused_in_control_hub(qtbot, make_hub):
    """R-USR-6: Control Hub offers 10-90 s; 5 is refused next to the field and nothing changes."""
    hub = make_hub()
    before = hub.sim.settings.export()
    user_page(hub, "dave")
    spin = find(hub, QSpinBox, "ch_user_repeat_interval")
    assert spin.value() == 30
    spin.clear()
    qtbot.keyClicks(spin, "5")
    assert spin.value() == 5
    click(qtbot, hub, "ch_save")
    refused(hub, "ch_error_people_dave_callRecording_repeat_interval", "5 is out of range", "10-90", "R-USR-6")
    assert hub.sim.settings.export() == before
    assert spin.value() == 5                      # the form keeps the typed value ...
    click(qtbot, hub, "ch_revert")                # ... until Revert shows the stored one
    assert spin.value() == 30
    assert not find(hub, QLabel, "ch_error_people_dave_callRecording_repeat_interval").isVisible()
    spin.setValue(90)
    click(qtbot, hub, "ch_save")
    assert hub.sim.call_recording("dave")["repeat"]["interval"] == 90


def test_r_cmp_2_compliance_delay_61_is_refused(qtbot, make_hub):
    """R-CMP-2: the compliance announcement delay is at most 60 s; 61 is refused, nothing changes.
    R-PRE-3: the legal notice is on the organisation page."""
    hub = make_hub()
    assert LEGAL_NOTICE in find(hub, QLabel, "ch_legal_notice").text()
    before = hub.sim.settings.export()
    find(hub, QCheckBox, "ch_compliance_outbound").setChecked(True)
    find(hub, QCheckBox, "ch_compliance_delay_enabled").setChecked(True)
    delay = find(hub, QSpinBox, "ch_compliance_delay")
    delay.clear()
    qtbot.keyClicks(delay, "61")
    click(qtbot, hub, "ch_org_save")
    refused(hub, "ch_error_organisation_recording_compliance_delayInSeconds", "61 is out of range", "0-60",
            "R-CMP-2")
    assert hub.sim.settings.export() == before
    delay.setValue(60)
    click(qtbot, hub, "ch_org_save")
    comp = hub.sim.settings.get_org()["compliance"]
    assert comp["outboundPSTNCallsEnabled"] and comp["delayInSeconds"] == 60
    assert not find(hub, QLabel, "ch_errors").isVisible()


def test_r_vl_3_webex_app_virtual_line_refuses_on_demand(qtbot, make_hub):
    """R-VL-3: a virtual line in the Webex App supports only Always; On Demand is refused."""
    def on_webex_app(data):
        data["virtual_lines"][0]["assigned_to"]["device"] = "webex-app"
    hub = make_hub(org_with(on_webex_app))
    before = hub.sim.settings.export()
    user_page(hub, "sales")
    record = find(hub, QComboBox, "ch_user_record")
    record.setCurrentIndex(record.findData("On Demand"))
    click(qtbot, hub, "ch_save")
    refused(hub, "ch_error_virtualLines_sales_callRecording_record", "'On Demand' is not allowed", "R-VL-3")
    assert hub.sim.settings.export() == before


def test_r_prv_7_unaccepted_terms_dialog_lists_what_is_shared_and_cancel_changes_nothing(qtbot, make_hub):
    """R-PRV-7, R-ORG-1: Dubber is preselected; choosing Imagicle (terms not accepted) opens the
    terms dialog listing exactly what is shared; Cancel changes nothing and the reason stays shown."""
    hub = make_hub()
    provider = find(hub, QComboBox, "ch_org_provider")
    assert provider.currentData() == "Dubber"
    assert [provider.itemData(i) for i in range(provider.count())] == [
        "Dubber", "Imagicle", "CallCabinet", "Webex", "None"]
    before = hub.sim.settings.export()
    choose(provider, "Imagicle")
    dialog = hub.terms_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    assert dialog.shared_items() == list(P.TERMS_SHARED) == [
        "customer name", "the user's location time zone", "first name", "last name", "e-mail"]
    assert "terms of service not accepted" in find(dialog, QLabel, "ch_terms_reason").text()
    click(qtbot, dialog, "ch_terms_cancel")
    assert hub.sim.settings.export() == before
    assert provider.currentData() == "Dubber"
    refused(hub, "ch_error_organisation_recording_provider", "terms of service not accepted", "R-PRV-7")


def test_r_pre_2_user_without_licence_cannot_be_enabled(qtbot, make_hub):
    """R-PRE-2: enabling recording for a user without a Professional or Basic licence is refused."""
    def no_licence(data):
        carol = next(u for u in data["users"] if u["id"] == "carol")
        carol["licence"] = None
        carol.pop("callRecording", None)
    hub = make_hub(org_with(no_licence))
    before = hub.sim.settings.export()
    user_page(hub, "carol")
    assert find(hub, QLabel, "ch_user_licence").text() == "None"
    enabled = find(hub, QCheckBox, "ch_user_enabled")
    assert not enabled.isChecked()
    enabled.setChecked(True)
    record = find(hub, QComboBox, "ch_user_record")
    record.setCurrentIndex(record.findData("Always"))
    click(qtbot, hub, "ch_save")
    refused(hub, "ch_error_people_carol_callRecording_enabled", "licence 'None'", "R-PRE-2")
    assert hub.sim.settings.export() == before


def test_r_org_2_turning_recording_off_needs_the_confirmation(qtbot, make_hub):
    """R-ORG-2: choosing None asks for the explicit confirmation; without it the store refuses."""
    hub = make_hub()
    before = hub.sim.settings.export()
    choose(find(hub, QComboBox, "ch_org_provider"), "None")
    dialog = hub.org_page.off_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    box = find(dialog, QCheckBox, "ch_off_confirm")
    assert box.text() == CONFIRM_OFF_TEXT
    click(qtbot, dialog, "ch_off_ok")                          # not ticked: refused
    assert "needs confirmation" in find(dialog, QLabel, "ch_off_error").text()
    assert hub.sim.settings.export() == before
    box.setChecked(True)
    click(qtbot, dialog, "ch_off_ok")
    assert hub.sim.settings.get_org()["provider"] == "None"
    assert find(hub, QComboBox, "ch_org_provider").currentData() == "None"


def test_r_loc_1_location_provider_and_compliance_overrides(qtbot, make_hub):
    """R-LOC-1, R-CMP-1: a location picks None (no recording there) and its own compliance."""
    hub = make_hub()
    hub.tabs.setCurrentWidget(hub.locations_page)
    select = find(hub, QComboBox, "ch_loc_select")
    select.setCurrentIndex(select.findData("wro"))
    loc_provider = find(hub, QComboBox, "ch_loc_provider")
    assert loc_provider.currentData() == "organisation"
    loc_provider.setCurrentIndex(loc_provider.findData("None"))
    comp = find(hub, QComboBox, "ch_loc_compliance")
    comp.setCurrentIndex(comp.findData("location"))
    find(hub, QCheckBox, "ch_loc_compliance_inbound").setChecked(True)
    click(qtbot, hub, "ch_loc_save")
    assert not find(hub, QLabel, "ch_errors").isVisible()
    loc = hub.sim.settings.get_location("wro")
    assert loc["provider"] == "None" and loc["compliance"]["inboundPSTNCallsEnabled"] is True
    assert hub.sim.settings.effective("dave").provider is None
    assert hub.sim.settings.effective("alice").provider == "Dubber"
    # a refused location change shows next to its field
    before = hub.sim.settings.export()
    delay = find(hub, QSpinBox, "ch_loc_compliance_delay")
    delay.setValue(61)
    click(qtbot, hub, "ch_loc_save")
    refused(hub, "ch_error_locations_wro_recording_compliance_delayInSeconds", "61 is out of range")
    assert hub.sim.settings.export() == before


def test_r_usr_7_provider_account_mismatch_fails_recording_until_fixed(qtbot, make_hub):
    """R-USR-7, R-PRV-6, R-PRV-7: with Imagicle (terms accepted in the dialog), alice's account
    made on the provider page with a wrong External Group makes her call's recording fail; fixing
    it there makes recording work."""
    hub = make_hub(start=True)
    sim = hub.sim
    choose(find(hub, QComboBox, "ch_org_provider"), "Imagicle")
    qtbot.waitUntil(hub.terms_dialog.isVisible, timeout=2000)
    click(qtbot, hub.terms_dialog, "ch_terms_accept")
    assert sim.settings.get_org()["provider"] == "Imagicle"
    assert "Imagicle" in sim.settings.get_org()["termsAccepted"]

    hub.tabs.setCurrentWidget(hub.provider_page)
    prov = find(hub, QComboBox, "ch_prov_select")
    prov.setCurrentIndex(prov.findData("Imagicle"))
    line = find(hub, QComboBox, "ch_prov_line")
    line.setCurrentIndex(line.findData("alice"))
    click(qtbot, hub, "ch_prov_fill")
    group = find(hub, QLineEdit, "ch_prov_group")
    right = group.text()
    assert right == sim.call_recording("alice")["externalGroup"]
    group.setText("wrong-group")
    click(qtbot, hub, "ch_prov_save")
    assert sim.settings.get_org()["accounts"]["Imagicle"]["users"]["alice"]["externalGroup"] == "wrong-group"
    assert "externalGroup" in hub.provider_page.table.item(0, 6).text()     # "fails: ..."

    def call_alice():
        sim.dial("bob", "1001")
        sim.wait_for("alice", "ringing", 3)
        sim.answer("alice")
        sim.wait_for("alice", "connected", 3)

    call_alice()
    sim.wait_until(lambda: sim.recording_state("alice") == "failed", 3, "alice's recording failed")
    sim.hangup("bob")
    sim.wait_for("alice", "ended", 3)

    group.setText(right)
    click(qtbot, hub, "ch_prov_save")
    assert hub.provider_page.table.item(0, 6).text() == "works"
    call_alice()
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recorded after the fix")
    sim.hangup("bob")


def test_the_view_follows_changes_made_elsewhere_but_keeps_unsaved_edits(qtbot, make_hub):
    """A change through the store (API, scenario step; here from another thread) shows in the
    view; a page with unsaved edits keeps them until Revert."""
    import threading
    hub = make_hub()
    user_page(hub, "bob")
    record = find(hub, QComboBox, "ch_user_record")
    t = threading.Thread(target=lambda: hub.sim.set_call_recording("bob", {"record": "Always"}))
    t.start()
    t.join()
    qtbot.waitUntil(lambda: record.currentData() == "Always", timeout=2000)
    record.setCurrentIndex(record.findData("On Demand"))          # unsaved edit
    hub.sim.set_call_recording("bob", {"recordVoicemailEnabled": True})
    qtbot.wait(50)
    assert record.currentData() == "On Demand"
    click(qtbot, hub, "ch_revert")
    assert record.currentData() == "Always"
    assert find(hub, QCheckBox, "ch_user_voicemail").isChecked()
