"""src/mppsim/app/http_server.py: the HTTP server both APIs share (issue 12). Real sockets on loopback;
the routes are tiny handlers registered here, no simulator needed."""
from __future__ import annotations

import http.client
import json
import time

import pytest

from mppsim.app.http_server import ApiServer, HttpError, Request, Response, Router

TOKEN = "test-token"


@pytest.fixture
def server():
    srv = ApiServer(sim=None, token=TOKEN)
    seen = {}

    def item(req: Request, itemId: str):
        seen["req"] = req
        return {"id": itemId, "q": req.arg("q"), "all": req.query.get("q")}

    def put_item(req: Request, itemId: str):
        seen["body"] = req.json()
        return None

    def vendors(req: Request):
        return {"literal": True}

    def refuse(req: Request):
        raise HttpError(400, "recordingEnabled must be true or false",
                        errors=[{"description": "recordingEnabled must be true or false", "errorCode": 25008}])

    def crash(req: Request):
        raise RuntimeError("boom")

    def stream(req: Request):
        return Response(200, headers={"Content-Type": "text/event-stream"},
                        stream=iter([b"data: 1\n\n", b"data: 2\n\n"]))

    srv.router.add("GET", "/t/items/{itemId}", item)
    srv.router.add("PUT", "/t/items/{itemId}", put_item)
    srv.router.add("GET", "/t/items/vendors", vendors)
    srv.router.add("POST", "/t/refuse", refuse)
    srv.router.add("GET", "/t/crash", crash)
    srv.router.add("GET", "/t/stream", stream)
    srv.seen = seen
    srv.start()
    yield srv
    srv.stop()


def call(srv, method, path, body=None, headers=None, token=TOKEN):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def assert_webex_error(resp, data, status):
    assert resp.status == status
    assert resp.getheader("Content-Type") == "application/json"
    err = json.loads(data)
    assert set(err) == {"message", "errors", "trackingId"}
    assert err["trackingId"].startswith("MPPSIM_")
    assert resp.getheader("TrackingID") == err["trackingId"]
    assert err["errors"] and {"description", "errorCode"} <= set(err["errors"][0])
    return err


def test_binds_a_free_port_and_reports_url(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    other = ApiServer(sim=None).start()      # two servers on one machine never collide
    try:
        assert other.port != server.port
        assert len(other.token) >= 20 and other.token != server.token   # random token
    finally:
        other.stop()


def test_missing_or_wrong_token_is_401_in_webex_shape(server):
    for token in (None, "wrong"):
        resp, data = call(server, "GET", "/t/items/abc", token=token)
        err = assert_webex_error(resp, data, 401)
        assert "Bearer" in err["message"]
        assert "req" not in server.seen     # the handler never ran
    resp, data = call(server, "GET", "/no/such/path", token=None)   # auth before routing: no path probing
    assert resp.status == 401


def test_path_params_query_and_base_url(server):
    resp, data = call(server, "GET", "/t/items/Y2lzY28%3D?q=1&q=2&empty=")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    assert json.loads(data) == {"id": "Y2lzY28=", "q": "1", "all": ["1", "2"]}
    req = server.seen["req"]
    assert req.path == "/t/items/Y2lzY28%3D" and req.query["empty"] == [""]
    assert req.base_url == f"http://127.0.0.1:{server.port}"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"


def test_literal_segment_beats_param(server):
    resp, data = call(server, "GET", "/t/items/vendors")
    assert json.loads(data) == {"literal": True}


def test_unknown_path_is_404(server):
    resp, data = call(server, "GET", "/t/nothing/here")
    err = assert_webex_error(resp, data, 404)
    assert err["errors"][0]["errorCode"] == 40400
    assert "/t/nothing/here" in err["message"]


def test_other_method_is_405_with_allow(server):
    resp, data = call(server, "DELETE", "/t/items/abc")
    assert_webex_error(resp, data, 405)
    assert set(resp.getheader("Allow").split(", ")) == {"GET", "PUT", "OPTIONS"}
    resp, _ = call(server, "OPTIONS", "/t/items/abc")
    assert resp.status == 204 and "PUT" in resp.getheader("Allow")


def test_put_json_and_204(server):
    resp, data = call(server, "PUT", "/t/items/x", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert resp.status == 204 and data == b""
    assert server.seen["body"] == {"a": 1}


def test_non_json_content_type_is_415(server):
    resp, data = call(server, "PUT", "/t/items/x", body=b"a=1",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    err = assert_webex_error(resp, data, 415)
    assert "application/json" in err["message"]


def test_bad_json_is_400(server):
    resp, data = call(server, "PUT", "/t/items/x", body=b'{"a": ', headers={"Content-Type": "application/json"})
    err = assert_webex_error(resp, data, 400)
    assert "not valid JSON" in err["message"]


def test_handler_error_keeps_its_code(server):
    resp, data = call(server, "POST", "/t/refuse")
    err = assert_webex_error(resp, data, 400)
    assert err["errors"] == [{"description": "recordingEnabled must be true or false", "errorCode": 25008}]


def test_handler_bug_is_500_and_server_lives_on(server):
    resp, data = call(server, "GET", "/t/crash")
    err = assert_webex_error(resp, data, 500)
    assert "boom" in err["message"]
    resp, _ = call(server, "GET", "/t/items/a")
    assert resp.status == 200


def test_stream_is_chunked(server):
    resp, data = call(server, "GET", "/t/stream")
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    assert data == b"data: 1\n\ndata: 2\n\n"


def test_keep_alive_serves_several_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for i in range(3):
        conn.request("GET", f"/t/items/{i}", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert json.loads(resp.read())["id"] == str(i)
    conn.close()


def test_stop_frees_the_port():
    srv = ApiServer(sim=None).start()
    port = srv.port
    srv.stop()
    t0 = time.time()
    again = ApiServer(sim=None, port=port).start()   # rebinding works once stopped
    again.stop()
    assert time.time() - t0 < 5


def test_router_refuses_duplicates():
    r = Router()
    r.add("GET", "/a/{x}", lambda req, x: None)
    with pytest.raises(ValueError, match="already registered"):
        r.add("get", "/a/{y}", lambda req, y: None)


def test_chunked_request_body_is_read(server):
    """A client that streams its body (Transfer-Encoding: chunked) is understood, and the
    connection stays usable for the next request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("PUT", "/t/items/x", body=iter([b'{"a": ', b'2}']), encode_chunked=True,
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 204 and server.seen["body"] == {"a": 2}
    conn.request("GET", "/t/items/y", headers={"Authorization": f"Bearer {TOKEN}"})
    assert json.loads(conn.getresponse().read())["id"] == "y"
    conn.close()


def test_bad_content_length_is_400(server):
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"PUT /t/items/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
                  b"Content-Length: lots\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):      # the server answers, then closes the connection
            data += chunk
    assert data.startswith(b"HTTP/1.1 400") and b"bad request body" in data
    assert b"Connection: close" in data
