"""The SIP toolkit's URIs and name-addr values (src/mppsim/sip/uri.py): one test per RFC 3261 /
RFC 3966 rule the one user-part reading relies on (it replaced five, issue 20), and round trips."""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.sip import uri


def test_user_part_forms_the_front_door_routes_by():
    assert uri.user("sip:1002@127.0.0.1:5070;transport=tcp") == "1002"
    assert uri.user("sips:1002@example.com") == "1002"
    assert uri.user("sip:1002;isub=1@example.com") == "1002"
    assert uri.user("tel:+1-415-555-0100;phone-context=x") == "+14155550100"
    assert uri.user("sip:%2B14155550100@h;user=phone") == "+14155550100"
    assert uri.user("sip:127.0.0.1:5070") == ""
    assert uri.user("mailto:x@y") == ""


def test_rfc3261_19_1_1_password_and_user_parameters_are_not_the_user():
    assert uri.user("sip:alice:secret@h") == "alice"
    assert uri.user("SIP:alice;x=1@h;transport=udp") == "alice"       # scheme in any case


def test_rfc3261_19_1_2_escaped_characters_are_undone():
    assert uri.user("sip:al%69ce@h") == "alice" and uri.user("sip:%2B1415@h") == "+1415"


def test_rfc3966_5_1_1_visual_separators_are_dropped_in_numbers():
    assert uri.user("tel:+1.415.(555)-0100") == "+14155550100"
    assert uri.user("sip:+1-415-555-0100@h;user=phone") == "+14155550100"
    assert uri.user("sip:a-b.c@h") == "a-b.c"                    # not a number: kept as written


def test_user_of_forms_the_agents_and_the_portal_read():
    assert uri.user("<sip:1001@127.0.0.1:5060>") == "1001"
    assert uri.user("tel:+1415;x=y") == "+1415" and uri.user("sip:+1415@h") == "+1415"
    assert uri.user("1004@127.0.0.1") == "1004" and uri.user("1004") == "1004"   # no scheme
    assert uri.user("sip:1002@h?subject=x") == "1002"


def test_rfc3261_20_10_name_addr_and_addr_spec():
    assert uri.name_addr('"A \\"B\\"" <sip:x@y;u=1>;tag=2') == ('A "B"', "sip:x@y;u=1", ";tag=2")
    assert uri.name_addr("Bob <sip:b@h>") == ("Bob", "sip:b@h", "")
    # an addr-spec: what follows its first ";" is header parameters (RFC 3261 §20.10)
    assert uri.name_addr("sip:127.0.0.1:5070;lr") == ("", "sip:127.0.0.1:5070", ";lr")
    assert uri.uri_of('"X" <sip:a@b;p>;tag=1') == "sip:a@b;p" and uri.uri_of("sip:a@b;tag=1") == "sip:a@b"


@pytest.mark.parametrize("value, expected", [
    ('"Alice" <sip:1001@h>', ("Alice", "1001")),
    ("Alice Smith <sip:1001@h;transport=tcp>;tag=x", ("Alice Smith", "1001")),
    ("<tel:+14155550100>", ("", "+14155550100")),
    ("sip:1001@h;tag=x", ("", "1001")),
    ("", ("", "")),
])
def test_name_and_user_of_a_remote_party(value, expected):
    assert uri.name_and_user(value) == expected


def test_rfc3261_19_1_1_host_port_and_its_default():
    assert uri.host_port("sip:srs@10.0.0.5:5070;transport=tcp") == ("10.0.0.5", 5070)
    assert uri.host_port("sip:srs@10.0.0.5") == ("10.0.0.5", 5060)
    assert uri.host_port("sip:[::1]:5080") == ("::1", 5080) and uri.host_port("sips:[2001:db8::1]") == ("2001:db8::1", 5060)
    assert uri.host_port("<sip:h:1>", 9) == ("h", 1) and uri.host_port("sip:h", 9) == ("h", 9)
    assert uri.host("sip:a@b.example:5") == "b.example"
    assert uri.port("sip:a@b:5062") == 5062 and uri.port("sip:a@b") is None


def test_rfc3261_19_1_1_parameters_and_transport():
    assert uri.params("sip:1002;isub=1@h;transport=TCP;lr;maddr=1.2.3.4") == {
        "transport": "TCP", "lr": "", "maddr": "1.2.3.4"}
    assert uri.transport("sip:a@h;Transport=TCP") == "tcp"
    assert uri.transport("sip:a@h") == "udp" and uri.transport("sip:a@h", default="tcp") == "tcp"
    assert uri.transport("sips:a@h") == "tls"                           # RFC 3261 §26.2.2
    assert uri.scheme("SIPS:a@h") == "sips" and uri.scheme("1002") == ""


_USER = st.text("abcdefghijklmnopqrstuvwxyz0123456789_!~*'", min_size=1, max_size=16)
_HOST = st.one_of(st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,6}){0,3}", fullmatch=True),
                  st.ip_addresses(v=4).map(str))


@hsettings(max_examples=200, deadline=None)
@given(user=_USER, host=_HOST, port=st.one_of(st.none(), st.integers(1, 65535)),
       transport=st.sampled_from(["", "udp", "tcp", "tls"]), display=st.text("Ab c", max_size=8))
def test_user_host_port_and_transport_read_back_what_was_written(user, host, port, transport, display):
    text = f"sip:{user}@{host}" + (f":{port}" if port else "") + (f";transport={transport}" if transport else "")
    assert uri.user(text) == user
    assert uri.host_port(text) == (host, port or 5060) and uri.port(text) == port
    assert uri.transport(text) == (transport or "udp")
    value = f'"{display}" <{text}>;tag=1'
    assert uri.name_addr(value) == (display.strip(), text, ";tag=1")
    assert uri.name_and_user(value) == (display.strip(), user)
