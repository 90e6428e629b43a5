"""mppsim's control API under /mppsim/v1 (issue 12, build 4) over real HTTP, against the demo org's
real agents (SIP and RTP on loopback). Responses are checked against docs/openapi.yaml's schemas."""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate

from mppsim.app.http_server import ApiServer

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())


def check(body, schema_name: str):
    """Validate a response body against components/schemas/<name> of docs/openapi.yaml."""
    Draft202012Validator({**SPEC, "$ref": f"#/components/schemas/{schema_name}"}).validate(body)
    return body


def documented_schema(method: str, path: str, status: int) -> dict | None:
    """The JSON schema docs/openapi.yaml gives for this response, or None when it gives none."""
    for template, ops in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in ops:
            responses = ops[method.lower()]["responses"]
            resp = responses.get(str(status))
            assert resp is not None, f"{method} {path} answered {status}, which docs/openapi.yaml does not list"
            while "$ref" in resp:
                resp = resolve(resp["$ref"])
            media = (resp.get("content") or {}).get("application/json")
            return media["schema"] if media else None
    raise AssertionError(f"{method} {path} is not in docs/openapi.yaml")


def resolve(ref: str) -> dict:
    node = SPEC
    for part in ref.split("/")[1:]:
        node = node[part]
    return node


def conforms(resp, *args, **kwargs):
    """requests hook: every JSON answer of /mppsim/v1 matches docs/openapi.yaml (status listed,
    body valid against the listed schema)."""
    path = urlsplit(resp.request.url).path
    if not path.startswith("/mppsim/v1/") or "text/event-stream" in resp.headers.get("Content-Type", ""):
        return
    if resp.status_code == 405:      # a method the document does not list for this path: by definition
        Draft202012Validator({**SPEC, "$ref": "#/components/schemas/Error"}).validate(resp.json())
        return
    schema = documented_schema(resp.request.method, path[len("/mppsim/v1"):], resp.status_code)
    if schema is not None:
        Draft202012Validator({**SPEC, **schema}).validate(resp.json())
    conforms.checked += 1


conforms.checked = 0


@pytest.fixture(scope="module")
def api(sim):
    server = ApiServer(sim).start()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {server.token}"
    s.hooks["response"].append(conforms)
    s.base = f"{server.url}/mppsim/v1"
    s.server = server
    yield s
    server.stop()


def post(api, path, body=None, status=200):
    r = api.post(api.base + path, json=body if body is not None else {}, timeout=20)
    assert r.status_code == status, r.text
    return r.json()


def get(api, path, status=200, **params):
    r = api.get(api.base + path, params=params, timeout=20)
    assert r.status_code == status, r.text
    return r.json()


def test_every_answer_is_checked_against_the_document(api):
    """The `conforms` hook the other tests rely on runs on each answer of /mppsim/v1 (counted
    here, on requests this test makes: a module fixture that counted the whole module's answers
    failed every run of a subset) and fails an answer the document does not describe."""
    before = conforms.checked
    get(api, "/devices")
    get(api, "/devices/alice")
    get(api, "/devices/zed", status=404)
    post(api, "/devices/alice/wait", {"state": "talking"}, status=400)
    assert api.get(api.base + "/openapi.yaml", timeout=10).status_code == 200
    assert conforms.checked == before + 5

    answer = requests.Response()
    answer.request = requests.Request("GET", api.base + "/devices").prepare()
    answer.headers["Content-Type"] = "application/json"
    answer.status_code, answer._content = 418, b"{}"
    with pytest.raises(AssertionError, match="answered 418, which docs/openapi.yaml does not list"):
        conforms(answer)
    answer.status_code, answer._content = 200, b'{"devices": "not a list"}'
    with pytest.raises(ValidationError):
        conforms(answer)
    assert conforms.checked == before + 5


def test_openapi_document_is_valid_and_served(api):
    validate(SPEC)                                   # OpenAPI 3.1 structure, $refs resolve
    r = api.get(api.base + "/openapi.yaml", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/yaml"
    assert yaml.safe_load(r.text) == SPEC


def test_every_route_is_documented_and_every_documented_path_exists(api):
    routes = {(m.lower(), p[len("/mppsim/v1"):]) for m, p in api.server.router.routes()
              if p.startswith("/mppsim/v1/")}
    documented = {(m, p) for p, ops in SPEC["paths"].items() for m in ops if m != "parameters"}
    # the router's {param} names are the document's
    assert routes == documented


def test_devices_list_and_state_idle(api):
    body = get(api, "/devices")
    ids = {d["id"]: d for d in body["devices"]}
    assert {"alice", "bob", "carol", "dave", "+14155550100"} <= set(ids)
    for d in body["devices"]:
        check(d, "DeviceSummary")
    assert ids["alice"]["devices"] == ["mpp 8865", "webex-app"]
    assert {d["id"] for d in get(api, "/devices", kind="pstn")["devices"]} == {"+14155550100", "+48221234567"}
    alice = check(get(api, "/devices/alice"), "Device")
    assert alice["call_state"] == "idle" and alice["indicator"] == "none"
    mpp = next(d for d in alice["devices"] if d["type"] == "mpp")
    assert mpp["softkeys"] == ["Redial", "New call"] and mpp["screen"]["state"] == "Idle"
    pstn = check(get(api, "/devices/14155550100"), "Device")          # E.164 without +
    assert pstn["id"] == "+14155550100" and [d["type"] for d in pstn["devices"]] == ["pstn"]
    assert pstn["devices"][0]["screen"]["text"] == "+14155550100  Pat Customer\nIdle"


def test_call_between_two_users_r_ux_3_r_ux_4(api):
    """alice (Always with Pause/Resume) calls bob (On Demand, user start) through the API alone:
    bob's MPP offers Answer/Decline while ringing; once connected alice's MPP shows PauseRec and
    her Webex App 'Pause recording' (R-UX-3, R-UX-4), bob's MPP Record; bob hears alice's tone."""
    assert post(api, "/devices/alice/dial", {"to": "1002"})["call"]
    bob = check(post(api, "/devices/bob/wait", {"state": "ringing", "timeout": 3}), "Device")
    assert next(d for d in bob["devices"] if d["type"] == "mpp")["softkeys"] == ["Answer", "Decline"]
    assert bob["devices"][0]["screen"]["title"] == "Alice Smith"
    assert post(api, "/devices/bob/softkey", {"key": "Answer"})["done"] is True
    post(api, "/devices/alice/wait", {"state": "connected", "timeout": 3})

    deadline = time.monotonic() + 3
    while True:
        alice = check(get(api, "/devices/alice"), "Device")
        if alice["indicator"] == "recording" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    mpp, app = alice["devices"]
    assert mpp["softkeys"][0] == "PauseRec" and "End call" in mpp["softkeys"]
    assert app["menu_items"] == ["Pause recording"] and app["indicator"] == "recording"
    assert alice["recording"]["state"] == "started"
    assert "Connected" in mpp["screen"]["text"] and "Bob Jones" in mpp["screen"]["text"]
    assert get(api, "/devices/bob")["softkeys"] == ["Record"]

    check(post(api, "/devices/bob/listen", {"seconds": 0.5})["heard"], "Heard")
    assert hears(api, "bob", 1000)                                 # alice's tone, from samples

    post(api, "/devices/alice/hold")
    post(api, "/devices/alice/wait", {"state": "held"})
    held = get(api, "/devices/alice")["devices"][0]
    assert held["screen"]["state"] == "On hold" and held["softkeys"][0] == "Resume"
    post(api, "/devices/alice/resume")
    post(api, "/devices/alice/wait", {"state": "connected"})
    post(api, "/devices/alice/dtmf", {"digits": "12#"})
    post(api, "/devices/alice/softkey", {"key": "End call"})
    post(api, "/devices/bob/wait", {"state": "ended"})
    calls = get(api, "/calls")["calls"]
    last = calls[-1]
    check(last, "CallLogEntry")
    assert last["from"]["id"] == "alice" and last["to"]["id"] == "bob" and last["answered"]


def test_menu_item_in_webex_app_r_ux_4(api, sim):
    """carol has only the Webex App: the recording menu is chosen over HTTP."""
    post(api, "/devices/carol/dial", {"to": "1004"})
    post(api, "/devices/dave/wait", {"state": "ringing", "timeout": 3})
    post(api, "/devices/dave/answer")
    post(api, "/devices/carol/wait", {"state": "connected", "timeout": 3})
    time.sleep(0.3)
    items = get(api, "/devices/carol")["menu_items"]
    if items:
        res = check(post(api, "/devices/carol/menu", {"item": items[0]}), "Pressed")
        assert res["done"] is True
    else:   # carol's mode offers nothing: choosing anything is refused, with the reason
        res = check(post(api, "/devices/carol/menu", {"item": "Start recording"}), "Pressed")
        assert res["done"] is False
    carol_mpp = api.post(api.base + "/devices/carol/softkey", json={"key": "Record"}, timeout=10)
    assert carol_mpp.status_code == 409 and "no mpp device" in carol_mpp.json()["message"]


def test_errors_name_the_field(api):
    r = api.get(api.base + "/devices/zed", timeout=10)
    assert r.status_code == 404 and "zed" in check(r.json(), "Error")["message"]
    r = api.post(api.base + "/devices/alice/dial", json={}, timeout=10)
    assert r.status_code == 400 and check(r.json(), "Error")["message"].startswith("to: missing")
    r = api.post(api.base + "/devices/alice/play", json={"tone": 99999}, timeout=10)
    assert r.status_code == 400 and "tone" in r.json()["message"] and "20 to 4000" in r.json()["message"]
    r = api.post(api.base + "/devices/alice/wait", json={"state": "talking"}, timeout=10)
    assert r.status_code == 400 and "allowed: idle, dialing" in r.json()["message"]
    r = api.post(api.base + "/devices/alice/menu", json={"item": "Record"}, timeout=10)
    assert r.status_code == 400 and "Start recording" in r.json()["message"]
    r = api.post(api.base + "/devices/alice/softkey", json={"key": "Record"}, timeout=10)   # idle: not shown
    assert r.status_code == 409 and "shown: Redial, New call" in r.json()["message"]
    r = api.post(api.base + "/devices/alice/answer", json={}, timeout=10)                  # nothing ringing
    assert r.status_code == 409 and check(r.json(), "Error")["errors"][0]["errorCode"] == 40900
    r = api.post(api.base + "/devices/alice/dial", json={"to": "5555"}, timeout=10)        # nobody's number
    assert r.status_code == 422 and check(r.json(), "Error")["message"].startswith(
        "to: '5555' is not a known extension or number; allowed: 1001, 1002")
    r = api.post(api.base + "/devices/alice/transfer", json={"to": "5555"}, timeout=10)
    assert r.status_code == 422 and "5555" in r.json()["message"]
    r = api.post(api.base + "/devices/alice/wait", json={"state": "ringing", "timeout": 0.2}, timeout=10)
    assert r.status_code == 409 and "not ringing" in r.json()["message"]
    r = api.post(api.base + "/devices/alice/dial", data="to=1002",
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 415
    r = api.delete(api.base + "/devices/alice", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, OPTIONS"
    r = requests.get(api.base + "/devices", timeout=10)                                    # no token
    assert r.status_code == 401
    r = api.get(api.base + "/recordings/nope", timeout=10)
    assert r.status_code == 404


def read_events(resp, n: int, until=None, timeout: float = 8.0) -> list[tuple[int, str, dict]]:
    """Parse SSE frames from a streaming requests response."""
    out, frame = [], {}
    deadline = time.monotonic() + timeout
    for raw in resp.iter_lines(decode_unicode=True):
        if time.monotonic() > deadline:
            break
        if raw == "":
            if "data" in frame:
                out.append((int(frame["id"]), frame["event"], json.loads(frame["data"])))
                if len(out) >= n or (until and until(out[-1])):
                    break
            frame = {}
        elif not raw.startswith(":"):
            key, _, value = raw.partition(": ")
            frame[key] = value
    return out


def test_event_stream_sse_and_replay(api, sim):
    got: list = []
    with api.get(api.base + "/events", params={"kinds": "call"}, stream=True, timeout=10) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
        t = threading.Thread(target=lambda: got.extend(
            read_events(r, 50, until=lambda e: e[2]["state"] == "ringing" and e[2]["agent"] == "bob")))
        t.start()
        time.sleep(0.3)
        post(api, "/devices/alice/dial", {"to": "1002"})
        t.join(10)
    assert got, "no event arrived"
    assert all(kind == "call" for _, kind, _ in got)
    n, kind, ev = got[-1]
    assert ev["agent"] == "bob" and ev["state"] == "ringing"
    assert sim.events[n] == json.loads(json.dumps(sim.events[n], default=str))    # id = index in the run
    assert sim.events[n]["call"] == ev["call"]
    # a client reconnecting with Last-Event-ID gets what came after, first
    first = got[0][0]
    with api.get(api.base + "/events", headers={"Last-Event-ID": str(first - 1)}, params={"kinds": "call"},
                 stream=True, timeout=10) as r:
        replay = read_events(r, len(got))
    assert [e[0] for e in replay] == [e[0] for e in got]
    r = api.get(api.base + "/events", params={"since": "x"}, timeout=10)
    assert r.status_code == 400 and "since" in r.json()["message"]


def test_scenario_run_with_report(api):
    steps = [{"dial": {"from": "alice", "to": "1002"}},
             {"answer": {"who": "bob"}},
             {"expect": {"who": "alice", "call": "connected"}},
             {"expect": {"who": "bob", "hears": 1000}},
             {"hangup": {"who": "alice"}}]
    run = check(post(api, "/scenario-runs?wait=true", {"name": "api-demo", "steps": steps}), "ScenarioRun")
    assert run["state"] == "passed", run["log"]
    assert run["report"]["passed"] and len(run["report"]["steps"]) == 5
    assert run["report"]["calls"][-1]["from"]["id"] == "alice"
    assert check(get(api, f"/scenario-runs/{run['id']}"), "ScenarioRun")["state"] == "passed"
    # asynchronous: 202 and a Location to poll
    r = api.post(api.base + "/scenario-runs", json={"steps": [{"wait": 0.2}]}, timeout=10)
    assert r.status_code == 202 and r.headers["Location"].endswith(r.json()["id"])
    deadline = time.monotonic() + 5
    while get(api, f"/scenario-runs/{r.json()['id']}")["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get(api, f"/scenario-runs/{r.json()['id']}")["state"] == "passed"
    # a failing step fails the run with the step's reason
    run = post(api, "/scenario-runs?wait=true", {"steps": [{"expect": {"who": "bob", "call": "ringing",
                                                                          "within": 0.2}}]})
    assert run["state"] == "failed" and "expected ringing" in run["report"]["steps"][0]["error"]
    # an invalid scenario is refused before anything runs, naming the step and field
    r = api.post(api.base + "/scenario-runs", json={"steps": [{"dial": {"from": "alice"}}]}, timeout=10)
    assert r.status_code == 400 and "steps[1]" in r.json()["message"]
    # the demo scenario file by path (its steps on this simulator)
    r = api.post(api.base + "/scenario-runs", json={"path": "/no/such.yaml"}, timeout=10)
    assert r.status_code == 400 and "cannot read" in r.json()["message"]


def test_decline_and_transfers(api, sim):
    """Decline by softkey; a blind transfer (bob passes alice to carol); an attended one (alice
    consults dave, who answers, then completes) — all over HTTP."""
    post(api, "/devices/alice/dial", {"to": "1002"})
    post(api, "/devices/bob/wait", {"state": "ringing", "timeout": 3})
    assert post(api, "/devices/bob/softkey", {"key": "Decline"})["done"]
    post(api, "/devices/alice/wait", {"state": "ended", "timeout": 3})

    post(api, "/devices/alice/dial", {"to": "1002"})
    post(api, "/devices/bob/wait", {"state": "ringing", "timeout": 3})
    post(api, "/devices/bob/answer")
    post(api, "/devices/alice/wait", {"state": "connected", "timeout": 3})
    post(api, "/devices/bob/transfer", {"to": "1003"})
    carol = post(api, "/devices/carol/wait", {"state": "ringing", "timeout": 5})
    assert carol["call"]["remote"]["user"] == "1001"          # alice is the one ringing carol
    post(api, "/devices/carol/answer")
    post(api, "/devices/alice/wait", {"state": "connected", "timeout": 5})
    assert hears(api, "carol", 1000)

    res = post(api, "/devices/alice/transfer", {"to": "1004", "attended": True, "within": 5})
    assert res["consult"] and res["call"]
    post(api, "/devices/dave/wait", {"state": "connected", "timeout": 5})
    assert hears(api, "dave", 2000)                                # dave now talks with carol
    r = api.post(api.base + "/devices/alice/transfer", json={"to": "1003", "attended": "yes"}, timeout=10)
    assert r.status_code == 400 and "attended" in r.json()["message"]


def hears(api, who: str, hz: float, within: float = 5.0) -> float:
    """The frequency `who` hears once it is hz (+-2 %) within `within` s; fails with what was heard."""
    deadline = time.monotonic() + within
    while True:
        heard = post(api, f"/devices/{who}/listen", {"seconds": 0.5})["heard"]
        freq = heard and heard["freq_hz"]
        if freq and abs(freq - hz) <= hz * 0.02:
            return freq
        if time.monotonic() > deadline:
            pytest.fail(f"{who} hears {heard}, expected {hz} Hz")
        time.sleep(0.2)


def test_recordings_wait_for_min_count(api, sim):
    """min_count + timeout: the list answers once enough recordings match, or after the timeout
    with what there is."""
    have = len(get(api, "/recordings")["recordings"])
    t0 = time.monotonic()
    body = get(api, "/recordings", min_count=have + 1, timeout=0.5)
    assert 0.45 <= time.monotonic() - t0 < 3 and len(body["recordings"]) == have
    t0 = time.monotonic()
    assert len(get(api, "/recordings", min_count=have, timeout=5)["recordings"]) == have
    assert time.monotonic() - t0 < 0.5                       # already enough: no wait
    r = api.get(api.base + "/recordings", params={"min_count": "many"}, timeout=10)
    assert r.status_code == 400 and "min_count" in r.json()["message"]


def test_event_stream_ends_when_the_server_stops(sim):
    """An open SSE stream does not keep a stopped server's thread (or the app) alive."""
    server = ApiServer(sim).start()
    ended = threading.Event()

    def reader():
        with requests.get(f"{server.url}/mppsim/v1/events", headers={"Authorization": f"Bearer {server.token}"},
                          stream=True, timeout=10) as r:
            for _ in r.iter_lines():
                pass
        ended.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.5)
    assert not ended.is_set()
    t0 = time.monotonic()
    server.stop()
    assert ended.wait(5), "the event stream outlived the server"
    assert time.monotonic() - t0 < 5
