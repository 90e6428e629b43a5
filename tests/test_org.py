"""Tests for the org file model (src/mppsim/app/org.py): pure logic, no Qt, no pjsua2."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mppsim.app.org import Device, Org, OrgError, Target, load_org, parse_org

ROOT = Path(__file__).resolve().parents[1]

DEMO = ROOT / "examples" / "demo-org.yaml"


def minimal() -> dict:
    return {
        "organisation": {"name": "Test Org"},
        "locations": [{"id": "hq", "name": "HQ"}],
        "users": [
            {"id": "alice", "name": "Alice", "extension": "1001", "location": "hq", "devices": [{"type": "mpp"}]},
            {"id": "bob", "name": "Bob", "extension": 1002, "location": "hq", "devices": [{"type": "webex-app"}]},
        ],
    }


def errors_of(data: dict) -> list[str]:
    with pytest.raises(OrgError) as ei:
        parse_org(data)
    return ei.value.errors


def assert_error(data: dict, prefix: str, *fragments: str) -> None:
    errs = errors_of(data)
    hits = [e for e in errs if e.startswith(prefix + ": ")]
    assert hits, f"no error starting with {prefix!r} in {errs}"
    for f in fragments:
        assert any(f in e for e in hits), f"{f!r} not in {hits}"


# -- the example and defaults -----------------------------------------------------------------


def test_demo_loads():
    org = load_org(DEMO)
    assert org.name == "Acme Demo"
    assert org.ring_timeout == 20.0
    assert org.source == DEMO
    assert [l.id for l in org.locations] == ["hq", "wro"]
    wro = org.location("wro")
    assert (wro.country, wro.timezone, wro.language) == ("PL", "Europe/Warsaw", "pl_pl")
    assert [u.id for u in org.users] == ["alice", "bob", "carol", "dave"]
    alice = org.user("alice")
    assert alice.devices == (Device("mpp", "8865"), Device("webex-app", None))
    assert alice.has_mpp and alice.has_webex_app
    carol = org.user("carol")
    assert carol.licence == "Basic" and not carol.has_mpp and carol.has_webex_app
    assert carol.language == "pl_pl"  # inherited from the location
    assert org.user("dave").devices == (Device("mpp", "6871"),)
    assert [(v.id, v.extension, v.user, v.device) for v in org.virtual_lines] == [("sales", "1100", "alice", "mpp")]
    assert [(p.number, p.name) for p in org.pstn] == [("+14155550100", "Pat Customer"), ("+48221234567", "Piotr Nowak")]


def test_defaults():
    org = parse_org(minimal())
    assert org.ring_timeout == 20.0 and org.source is None
    assert org.location("hq").country == "US"
    assert org.location("hq").timezone == "UTC"
    assert org.location("hq").language == "en_us"
    a, b = org.users
    assert a.licence == "Professional"
    assert a.email == "alice@test-org.example"
    assert a.language == "en_us"
    assert a.devices == (Device("mpp", "8865"),)
    assert b.extension == "1002"  # int in YAML -> str
    assert org.virtual_lines == () and org.pstn == ()


def test_licence_null_means_none_and_int_model():
    d = minimal()
    d["users"][0]["licence"] = None
    d["users"][0]["devices"] = [{"type": "mpp", "model": 7841}]
    d["pstn"] = [{"number": "+48221234567"}]
    org = parse_org(d)
    assert org.user("alice").licence == "None"
    assert org.user("alice").devices[0].model == "7841"
    assert org.pstn[0].name == "+48221234567"


def test_lookups_raise_keyerror():
    org = parse_org(minimal())
    with pytest.raises(KeyError):
        org.user("zed")
    with pytest.raises(KeyError):
        org.location("nowhere")
    with pytest.raises(KeyError):
        org.lines_of("zed")


def test_lines_of():
    org = load_org(DEMO)
    assert org.lines_of("alice") == [("alice", "1001", "Alice Smith"), ("sales", "1100", "Sales Line")]
    assert org.lines_of("bob") == [("bob", "1002", "Bob Jones")]


# -- resolve / party_name ---------------------------------------------------------------------


def test_resolve():
    org = load_org(DEMO)
    assert org.resolve("1002") == Target("user", "bob", "bob")
    assert org.resolve("1100") == Target("virtual_line", "alice", "sales")
    assert org.resolve("+14155550100") == Target("pstn", "+14155550100", "+14155550100")
    assert org.resolve("14155550100") == Target("pstn", "+14155550100", "+14155550100")
    assert org.resolve("48221234567") == Target("pstn", "+48221234567", "+48221234567")
    assert org.resolve("9999") is None
    assert org.resolve("+19995550100") is None
    assert org.resolve("") is None


def test_party_name():
    org = load_org(DEMO)
    assert org.party_name("1001") == "Alice Smith"
    assert org.party_name("1100") == "Sales Line"
    assert org.party_name("+48221234567") == "Piotr Nowak"
    assert org.party_name("14155550100") == "Pat Customer"
    assert org.party_name("5555") is None


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_demo():
    org = load_org(DEMO)
    d = org.to_dict()
    again = parse_org(d)
    assert again == org
    # and through YAML text
    assert parse_org(yaml.safe_load(yaml.safe_dump(d, sort_keys=False))) == org
    assert again.to_dict() == d


def test_round_trip_edge_values(tmp_path):
    d = minimal()
    d["organisation"]["ring_timeout"] = 7.5
    d["users"][0]["licence"] = None
    org = parse_org(d)
    p = tmp_path / "o.yaml"
    p.write_text(yaml.safe_dump(org.to_dict(), sort_keys=False))
    again = load_org(p)
    assert again == org
    assert again.ring_timeout == 7.5 and again.user("alice").licence == "None"


# -- errors, one of each kind, each with its path ---------------------------------------------


def _set(d: dict, path: tuple, value) -> dict:
    d = copy.deepcopy(d)
    target = d
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return d


def _del(d: dict, path: tuple) -> dict:
    d = copy.deepcopy(d)
    target = d
    for k in path[:-1]:
        target = target[k]
    del target[path[-1]]
    return d


M = minimal()


@pytest.mark.parametrize(
    "data, prefix, fragments",
    [
        # top level
        (_set(M, ("bogus",), 1), "bogus", ["unknown key; allowed: organisation, locations, users, virtual_lines, pstn, network"]),
        (_del(M, ("organisation",)), "organisation", ["missing"]),
        (_del(M, ("locations",)), "locations", ["missing"]),
        (_set(M, ("locations",), []), "locations", ["at least one"]),
        (_set(M, ("users",), []), "users", ["at least one"]),
        (_set(M, ("users",), "alice"), "users", ["list"]),
        # organisation
        (_del(M, ("organisation", "name")), "organisation.name", ["missing"]),
        (_set(M, ("organisation", "name"), ""), "organisation.name", ["non-empty string"]),
        (_set(M, ("organisation", "ring_timeout"), 1), "organisation.ring_timeout", ["from 2 to 300"]),
        (_set(M, ("organisation", "ring_timeout"), 301), "organisation.ring_timeout", ["from 2 to 300"]),
        (_set(M, ("organisation", "ring_timeout"), True), "organisation.ring_timeout", ["from 2 to 300"]),
        (_set(M, ("organisation", "ring_timeout"), "20"), "organisation.ring_timeout", ["number of seconds"]),
        (_set(M, ("organisation", "colour"), "red"), "organisation.colour", ["unknown key; allowed: name, ring_timeout"]),
        # locations
        (_set(M, ("locations", 0, "id"), "HQ"), "locations[0].id", ["[a-z][a-z0-9_-]{0,31}"]),
        (_set(M, ("locations", 0, "id"), "a" * 33), "locations[0].id", ["not a valid identifier"]),
        (_del(M, ("locations", 0, "name")), "locations[0].name", ["missing"]),
        (_set(M, ("locations", 0, "country"), "USA"), "locations[0].country", ["ISO-3166 alpha-2"]),
        (_set(M, ("locations", 0, "country"), "XX"), "locations[0].country", ["ISO-3166 alpha-2"]),
        (_set(M, ("locations", 0, "timezone"), "Mars/Olympus"), "locations[0].timezone", ["IANA time zone"]),
        (_set(M, ("locations", 0, "language"), "klingon"), "locations[0].language", ["'klingon' is not allowed; allowed: en_us, en_gb, pl_pl"]),
        (_set(M, ("locations", 0, "floor"), 3), "locations[0].floor", ["unknown key; allowed: id, name, country, timezone, language"]),
        (_set(M, ("locations", 0), "hq"), "locations[0]", ["must be a mapping"]),
        # users
        (_set(M, ("users", 1, "id"), "alice"), "users[1].id", ["already used by users[0]"]),
        (_set(M, ("users", 1, "id"), "voicemail"), "users[1].id", ["reserved", "pstn, frontdoor, voicemail, recorder"]),
        (_set(M, ("users", 1, "id"), "Bob"), "users[1].id", ["not a valid identifier"]),
        (_set(M, ("users", 1, "extension"), "1001"), "users[1].extension", ["already used by users[0]"]),
        (_set(M, ("users", 1, "extension"), "1"), "users[1].extension", ["2 to 8 digits"]),
        (_set(M, ("users", 1, "extension"), "123456789"), "users[1].extension", ["2 to 8 digits"]),
        (_set(M, ("users", 1, "extension"), "10a2"), "users[1].extension", ["2 to 8 digits"]),
        (_del(M, ("users", 1, "extension")), "users[1].extension", ["missing"]),
        (_set(M, ("users", 1, "location"), "paris"), "users[1].location", ["'paris' is not a location; defined locations: hq"]),
        (_set(M, ("users", 1, "licence"), "Gold"), "users[1].licence", ["'Gold' is not allowed; allowed: Professional, Basic, None"]),
        (_set(M, ("users", 1, "email"), "not-an-email"), "users[1].email", ["not an e-mail address"]),
        (_set(M, ("users", 1, "email"), "alice@test-org.example"), "users[1].email", ["already used by users[0]"]),
        (_set(M, ("users", 1, "language"), "xx_xx"), "users[1].language", ["allowed: en_us"]),
        (_set(M, ("users", 1, "phone"), "x"), "users[1].phone", ["unknown key; allowed: id, name, extension, location"]),
        (_del(M, ("users", 1, "name")), "users[1].name", ["missing; required"]),
        (_del(M, ("users", 1, "devices")), "users[1].devices", ["missing"]),
        (_set(M, ("users", 1, "devices"), []), "users[1].devices", ["at least one"]),
        (_set(M, ("users", 1, "devices"), [{"type": "fax"}]), "users[1].devices[0].type", ["'fax' is not allowed; allowed: mpp, webex-app"]),
        (_set(M, ("users", 1, "devices"), [{"model": "8865"}]), "users[1].devices[0].type", ["missing"]),
        (_set(M, ("users", 1, "devices"), [{"type": "mpp", "model": "9999"}]), "users[1].devices[0].model", ["'9999' is not allowed; allowed: 6821"]),
        (_set(M, ("users", 1, "devices"), [{"type": "webex-app", "model": "8865"}]), "users[1].devices[0].model", ["not allowed for type 'webex-app'"]),
        (_set(M, ("users", 1, "devices"), [{"type": "mpp"}, {"type": "mpp"}]), "users[1].devices[1].type", ["at most one device of each type"]),
        (_set(M, ("users", 1, "devices"), [{"type": "mpp", "colour": "red"}]), "users[1].devices[0].colour", ["unknown key; allowed: type, model"]),
    ],
)
def test_error_reported_with_path(data, prefix, fragments):
    assert_error(data, prefix, *fragments)


def with_vline(**changes) -> dict:
    d = minimal()
    vl = {"id": "sales", "name": "Sales", "extension": "1100", "location": "hq", "assigned_to": {"user": "alice", "device": "mpp"}}
    vl.update(changes)
    d["virtual_lines"] = [{k: v for k, v in vl.items() if v is not ...}]
    return d


def test_virtual_line_ok_and_language_default():
    org = parse_org(with_vline())
    v = org.virtual_lines[0]
    assert (v.user, v.device, v.language) == ("alice", "mpp", "en_us")


@pytest.mark.parametrize(
    "changes, prefix, fragments",
    [
        ({"id": "alice"}, "virtual_lines[0].id", ["already used by users[0]"]),
        ({"id": "recorder"}, "virtual_lines[0].id", ["reserved"]),
        ({"extension": "1002"}, "virtual_lines[0].extension", ["already used by users[1]"]),
        ({"location": "moon"}, "virtual_lines[0].location", ["not a location"]),
        ({"language": "en"}, "virtual_lines[0].language", ["allowed: en_us"]),
        ({"assigned_to": ...}, "virtual_lines[0].assigned_to", ["missing"]),
        ({"assigned_to": {"user": "zed", "device": "mpp"}}, "virtual_lines[0].assigned_to.user", ["'zed' is not a user; users: alice, bob"]),
        ({"assigned_to": {"user": "alice", "device": "fax"}}, "virtual_lines[0].assigned_to.device", ["allowed: mpp, webex-app"]),
        ({"assigned_to": {"user": "alice"}}, "virtual_lines[0].assigned_to.device", ["missing"]),
        ({"assigned_to": {"user": "alice", "device": "mpp", "x": 1}}, "virtual_lines[0].assigned_to.x", ["unknown key; allowed: user, device"]),
        ({"colour": "red"}, "virtual_lines[0].colour", ["unknown key; allowed: id, name, extension, location, language, assigned_to"]),
    ],
)
def test_virtual_line_errors(changes, prefix, fragments):
    assert_error(with_vline(**changes), prefix, *fragments)


def test_virtual_line_user_lacks_device_type():
    # alice has only an mpp; bob only the webex-app
    assert_error(
        with_vline(assigned_to={"user": "alice", "device": "webex-app"}),
        "virtual_lines[0].assigned_to.device",
        "user 'alice' has no webex-app device; alice has: mpp",
    )
    assert_error(
        with_vline(assigned_to={"user": "bob", "device": "mpp"}),
        "virtual_lines[0].assigned_to.device",
        "user 'bob' has no mpp device",
    )


@pytest.mark.parametrize(
    "entry, prefix, fragments",
    [
        ({"number": "14155550100"}, "pstn[1].number", ["not an E.164 number", '"+" then 8 to 15 digits']),
        ({"number": 14155550100}, "pstn[1].number", ["quoted string"]),
        ({"number": "+0415555010"}, "pstn[1].number", ["first digit 1-9"]),
        ({"number": "+1234567"}, "pstn[1].number", ["not an E.164 number"]),
        ({"number": "+1234567890123456"}, "pstn[1].number", ["not an E.164 number"]),
        ({"number": "+14155550100"}, "pstn[1].number", ["already used by pstn[0]"]),
        ({"name": "Nobody"}, "pstn[1].number", ["missing"]),
        ({"number": "+14155550111", "city": "SF"}, "pstn[1].city", ["unknown key; allowed: number, name"]),
        ({"number": "+14155550111", "name": ""}, "pstn[1].name", ["non-empty string"]),
    ],
)
def test_pstn_errors(entry, prefix, fragments):
    d = minimal()
    d["pstn"] = [{"number": "+14155550100"}, entry]
    assert_error(d, prefix, *fragments)


def test_pstn_number_equal_to_extension_is_ambiguous():
    d = minimal()
    d["users"][0]["extension"] = "12345678"
    d["pstn"] = [{"number": "+12345678"}]
    assert_error(d, "pstn[0].number", "equals the extension of users[0]")


def test_not_a_mapping():
    errs = errors_of([1, 2])  # type: ignore[arg-type]
    assert errs[0].startswith("(top level): must be a mapping")


def test_many_errors_all_reported():
    d = minimal()
    d["bogus"] = True
    d["organisation"]["ring_timeout"] = 0
    d["locations"][0]["country"] = "ZZ"
    d["users"][0]["licence"] = "Gold"
    d["users"][1]["extension"] = "1001"
    d["users"][1]["location"] = "paris"
    d["virtual_lines"] = [
        {"id": "sales", "name": "S", "extension": "1100", "location": "hq", "assigned_to": {"user": "bob", "device": "mpp"}}
    ]
    d["pstn"] = [{"number": "12"}]
    errs = errors_of(d)
    prefixes = [e.split(": ", 1)[0] for e in errs]
    assert prefixes == [
        "bogus",
        "organisation.ring_timeout",
        "locations[0].country",
        "users[0].licence",
        "users[1].extension",
        "users[1].location",
        "virtual_lines[0].assigned_to.device",
        "pstn[0].number",
    ]


def test_error_str_format(tmp_path):
    d = minimal()
    d["users"][1]["licence"] = "Gold"
    d["bogus"] = 1
    p = tmp_path / "org.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(OrgError) as ei:
        load_org(p)
    e = ei.value
    assert isinstance(e, ValueError)
    assert e.path == p
    assert str(e) == (
        f"invalid org file {p}:\n"
        "  - bogus: unknown key; allowed: organisation, locations, users, virtual_lines, pstn, network, "
        "hunt_groups, call_queues, auto_attendants\n"
        "  - users[1].licence: 'Gold' is not allowed; allowed: Professional, Basic, None"
    )


# -- file-level problems ----------------------------------------------------------------------


def test_missing_file(tmp_path):
    p = tmp_path / "nope.yaml"
    with pytest.raises(OrgError) as ei:
        load_org(p)
    assert str(p) in str(ei.value)
    assert ei.value.errors[0].startswith("cannot read file")


def test_yaml_syntax_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("organisation: {name: x\nlocations: [\n")
    with pytest.raises(OrgError) as ei:
        load_org(p)
    assert str(ei.value).startswith(f"invalid org file {p}:\n  - YAML syntax:")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("")
    with pytest.raises(OrgError) as ei:
        load_org(p)
    assert ei.value.errors[0].startswith("(top level): must be a mapping")


def test_duplicate_yaml_key_is_an_error(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text(DEMO.read_text().replace("    name: Bob Jones\n", "    name: Bob Jones\n    name: Robert\n"))
    with pytest.raises(OrgError) as ei:
        load_org(p)
    assert "duplicate key 'name'" in str(ei.value)


def test_yaml_1_1_pitfalls_are_kept_as_text(tmp_path):
    # unquoted '+' numbers and leading-zero extensions keep their text; NO (Norway) is not a bool
    p = tmp_path / "o.yaml"
    p.write_text(
        "organisation: {name: N}\n"
        "locations: [{id: osl, name: Oslo, country: NO, timezone: Europe/Oslo}]\n"
        "users: [{id: ola, name: Ola, extension: 0100, location: osl, devices: [{type: mpp, model: 8841}]}]\n"
        "pstn: [{number: +4722123456}]\n"
    )
    org = load_org(p)
    assert org.location("osl").country == "NO"
    assert org.user("ola").extension == "0100"
    assert org.user("ola").devices[0].model == "8841"
    assert org.resolve("0100") == Target("user", "ola", "ola")
    assert org.pstn[0].number == "+4722123456"


def test_org_is_frozen():
    org = parse_org(minimal())
    with pytest.raises(AttributeError):
        org.name = "x"  # type: ignore[misc]
    assert isinstance(org, Org)


def test_at_most_three_virtual_lines_per_user():
    data = minimal()
    data["virtual_lines"] = [
        {"id": f"vl{i}", "name": f"VL {i}", "extension": f"20{i}0", "location": "hq",
         "assigned_to": {"user": "alice", "device": "mpp"}}
        for i in range(4)
    ]
    errs = errors_of(data)
    assert any(e.startswith("virtual_lines[3].assigned_to.user: ") and "at most 3" in e for e in errs)


# -- call recording blocks (src/mppsim/rules/settings.py validates them) ------------------------------


def test_demo_recording_blocks():
    org = load_org(DEMO)
    assert org.recording["provider"] == "Dubber" and org.recording["tier"] == "Go"
    assert org.recording["termsAccepted"] == ["Dubber"]
    assert org.user("alice").call_recording["record"] == "Always with Pause/Resume"
    assert org.user("bob").call_recording["record"] == "On Demand with User Initiated Start"
    assert org.user("carol").call_recording["record"] == "Never"
    assert org.user("dave").call_recording["repeat"] == {"enabled": True, "interval": 30}
    assert org.virtual_line("sales").call_recording == {"enabled": True, "record": "Always"}
    assert org.location("hq").recording == {}


def test_recording_blocks_default_empty():
    org = parse_org(minimal())
    assert org.recording == {} and org.location("hq").recording == {}
    assert org.user("alice").call_recording == {}
    assert "recording" not in org.to_dict()["organisation"]
    assert "callRecording" not in org.to_dict()["users"][0]


def test_round_trip_keeps_recording_blocks():
    d = minimal()
    d["organisation"]["recording"] = {"provider": "Imagicle", "termsAccepted": ["Imagicle"], "region": "EU",
                                      "compliance": {"inboundPSTNCallsEnabled": True, "delayInSeconds": 5},
                                      "recorders": {"Imagicle": "sip:127.0.0.1:5080;transport=tcp"},
                                      "accounts": {"Imagicle": {"users": {"alice": {
                                          "serviceProvider": "test-org", "externalGroup": "hq",
                                          "externalIdentifier": "alice"}}}}}
    d["locations"][0]["recording"] = {"provider": "organisation", "compliance": "organisation",
                                      "failureBehavior": "END_CALL_WITH_ANNOUNCEMENT"}
    d["users"][0]["callRecording"] = {"enabled": True, "record": "Always", "repeat": {"enabled": True, "interval": 600}}
    org = parse_org(d)
    assert org.user("alice").call_recording["repeat"]["interval"] == 600
    assert parse_org(org.to_dict()) == org
    assert parse_org(yaml.safe_load(yaml.safe_dump(org.to_dict(), sort_keys=False))) == org
    hash(org)  # raw dicts are kept out of the hash


def _rec(d: dict, where: tuple, value) -> dict:
    return _set(d, where, value)


@pytest.mark.parametrize(
    "data, prefix, fragments",
    [
        (_rec(M, ("organisation", "recording"), {"colour": "red"}), "organisation.recording.colour",
         ["unknown key; allowed: provider, confirmOff, tier, termsAccepted"]),
        (_rec(M, ("organisation", "recording"), "Dubber"), "organisation.recording", ["must be a mapping"]),
        (_rec(M, ("organisation", "recording"), {"provider": "Acme"}), "organisation.recording.provider",
         ["'Acme' is not allowed; allowed: Dubber, Imagicle, CallCabinet, Webex, None (R-PRV-1)"]),
        (_rec(M, ("organisation", "recording"), {"failureBehavior": "x"}), "organisation.recording.failureBehavior",
         ["allowed: PROCEED_WITH_CALL_NO_ANNOUNCEMENT, PROCEED_CALL_WITH_ANNOUNCEMENT, END_CALL_WITH_ANNOUNCEMENT"]),
        (_rec(M, ("organisation", "recording"), {"compliance": {"delayInSeconds": 90}}),
         "organisation.recording.compliance.delayInSeconds", ["90 is out of range; allowed: 0-60 seconds (R-CMP-2)"]),
        (_rec(M, ("organisation", "recording"), {"region": "MARS"}), "organisation.recording.region",
         ["allowed: US, CA, EU, EUN"]),
        (_rec(M, ("organisation", "recording"), {"termsAccepted": "Dubber"}), "organisation.recording.termsAccepted",
         ["must be a list of providers"]),
        (_rec(M, ("locations", 0, "recording"), {"provider": "Acme"}), "locations[0].recording.provider",
         ["allowed: organisation, Dubber, Imagicle, CallCabinet, Webex, None (R-LOC-1)"]),
        (_rec(M, ("locations", 0, "recording"), {"compliance": "yes"}), "locations[0].recording.compliance",
         ["allowed: 'organisation' or a mapping with keys inboundPSTNCallsEnabled"]),
        (_rec(M, ("users", 0, "callRecording"), {"record": "Sometimes"}), "users[0].callRecording.record",
         ["'Sometimes' is not allowed; allowed: Never, Always, Always with Pause/Resume, On Demand, "
          "On Demand with User Initiated Start (R-USR-2)"]),
        (_rec(M, ("users", 0, "callRecording"), {"enabled": True, "repeat": {"interval": 5}}),
         "users[0].callRecording.repeat.interval", ["5 is out of range; allowed: 10-1800 (API, R-USR-6)"]),
        (_rec(M, ("users", 0, "callRecording"), {"enabled": True, "externalGroup": "elsewhere"}),
         "users[0].callRecording.externalGroup", ["read-only", "it is 'WBVDW"]),
        (_rec(M, ("users", 0, "callRecording"), {"enabled": True, "record": "On Demand",
                                                 "selectiveCallRecordingSettings": {"enabled": True}}),
         "users[0].callRecording.selectiveCallRecordingSettings.enabled", ["(R-USR-8)"]),
        (_rec(with_vline(), ("virtual_lines", 0, "callRecording"), {"record": 3}), "virtual_lines[0].callRecording.record",
         ["3 is not allowed"]),
    ],
)
def test_recording_error_reported_with_path(data, prefix, fragments):
    assert_error(data, prefix, *fragments)


def test_recording_errors_reported_with_other_errors():
    """Shape errors of recording blocks come with the rest of the file's errors."""
    d = _set(M, ("users", 0, "callRecording"), {"record": "Sometimes"})
    d = _set(d, ("users", 1, "licence"), "Gold")
    errs = errors_of(d)
    assert any(e.startswith("users[0].callRecording.record: 'Sometimes'") for e in errs)
    assert any(e.startswith("users[1].licence: 'Gold'") for e in errs)


def test_recording_rules_across_levels_with_file_paths():
    """R-PRE-2, R-PRV-7, R-VL-3: cross-level rules are reported with org-file paths."""
    d = with_vline(assigned_to={"user": "bob", "device": "webex-app"},
                   callRecording={"enabled": True, "record": "On Demand"})
    d["users"][0]["licence"] = None
    d["users"][0]["callRecording"] = {"enabled": True}
    d["locations"][0]["recording"] = {"provider": "Imagicle"}
    errs = errors_of(d)
    assert [e.split(":")[0] for e in errs] == ["locations[0].recording.provider", "users[0].callRecording.enabled",
                                               "virtual_lines[0].callRecording.record"]


def test_old_selective_field_names_accepted_with_a_deprecation_notice(tmp_path, caplog):
    """R-USR-8: org files written before mppsim followed the Webex API's names
    (recordInboundInternal ...) still load, with a deprecation notice naming the new field; the
    settings read back under the API's names."""
    d = minimal()
    d["users"][0]["callRecording"] = {"enabled": True, "record": "Always", "selectiveCallRecordingSettings": {
        "enabled": True, "recordInboundInternal": False, "recordOutboundExternalCallsEnabled": False}}
    f = tmp_path / "old.yaml"
    f.write_text(yaml.safe_dump(d))
    with caplog.at_level("WARNING", logger="mppsim.org"):
        org = load_org(f)
    assert [r.getMessage() for r in caplog.records if r.name == "mppsim.org"] == [
        f"{f}: users[0].callRecording.selectiveCallRecordingSettings.recordInboundInternal: deprecated name; "
        f"write recordInboundInternalCallsEnabled (the Webex API's name); recordInboundInternal is still read"]
    uid = org.users[0].id
    assert org.notices == ("users[0].callRecording.selectiveCallRecordingSettings.recordInboundInternal: "
                           "deprecated name; write recordInboundInternalCallsEnabled (the Webex API's name); "
                           "recordInboundInternal is still read",)
    sel = org.user(uid).call_recording["selectiveCallRecordingSettings"]
    assert sel == {"enabled": True, "recordInboundInternalCallsEnabled": False,
                   "recordOutboundExternalCallsEnabled": False}
    from mppsim.rules.settings import SettingsStore
    got = SettingsStore.from_org(org).get_person(uid)["selectiveCallRecordingSettings"]
    assert got["recordInboundInternalCallsEnabled"] is False and got["recordInboundExternalCallsEnabled"] is True
    assert "recordInboundInternal" not in got
    # a file with the new names loads without notices
    assert parse_org(org.to_dict()).notices == ()


def test_issue_21_network_block_sets_address_rtp_ports_and_tls_ca_and_round_trips():
    from mppsim.app.network import parse_network
    net, errs = parse_network({"address": "127.0.0.1", "rtp_ports": "20000-20999", "tls_ca": "/x/ca.pem"})
    assert errs == [] and (net.address, net.rtp_ports, net.tls_ca) == ("127.0.0.1", (20000, 20999), "/x/ca.pem")
    _, errs = parse_network({"address": "192.0.2.77", "rtp_ports": "5-6", "port": 1})
    assert any("not an address of this host" in e for e in errs)
    assert any("rtp_ports" in e for e in errs) and any("network.port: unknown key" in e for e in errs)
    org = parse_org(dict(minimal(), network={"address": "127.0.0.1", "rtp_ports": "20000-20999"}))
    assert org.network.rtp_ports == (20000, 20999) and parse_org(org.to_dict()) == org
