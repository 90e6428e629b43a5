"""Where a run lives on the network (issue 21): the one address that agents, the front door, the
network SRC and the embedded recorder bind and write into SIP, SDP and metadata, and the RTP port
range a firewall opens. Loopback is the default; a lab whose SRS or softphones are on other hosts
sets `network:` in the org file or `--address` on `gui`, `api`, `run`, `load`.

The control channel between the app and its agents stays on 127.0.0.1 whatever is chosen: it is
unauthenticated (docs/protocol.md).

    network:
      address: 10.77.1.1          # an address of this host (IPv4); default 127.0.0.1
      rtp_ports: 20000-29999      # agents' RTP (and the plan's SIP) ports, for a firewall rule
      tls_ca: /etc/lab/srs-ca.pem # CA file an SRS's TLS certificate is checked against
      srtp: optional              # SIPREC media as SRTP (SDES): off (default) | optional | mandatory
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from typing import Any

LOOPBACK = "127.0.0.1"
KEYS = ("address", "rtp_ports", "tls_ca", "srtp")
SRTP = ("off", "optional", "mandatory")


@dataclass(frozen=True)
class Network:
    address: str = LOOPBACK
    rtp_ports: tuple[int, int] | None = None     # inclusive range, None = the plan's default
    tls_ca: str = ""                             # CA file for an SRS's certificate ("" = system CAs)
    srtp: str = "off"                            # SIPREC media: off | optional (offered) | mandatory

    def with_address(self, address: str | None) -> "Network":
        return replace(self, address=address) if address else self

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"address": self.address}
        if self.rtp_ports:
            d["rtp_ports"] = f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"
        if self.tls_ca:
            d["tls_ca"] = self.tls_ca
        if self.srtp != "off":
            d["srtp"] = self.srtp
        return d


def check_address(address: str) -> str | None:
    """Why `address` cannot be used (None when it can): IPv4, and an address of this host."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address, e.g. 10.0.0.5"
    if ip.version != 4:
        return f"{address}: only IPv4 addresses are supported (agents refuse IPv6 offers with 488)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, 0))
        except OSError as exc:
            return f"{address} is not an address of this host ({exc.strerror})"
    return None


def parse_network(raw: Any, path: str = "network") -> tuple[Network, list[str]]:
    """The org file's `network:` block -> (Network, errors)."""
    if raw is None:
        return Network(), []
    if not isinstance(raw, dict):
        return Network(), [f"{path}: must be a mapping with keys {', '.join(KEYS)}"]
    errors = [f"{path}.{k}: unknown key; allowed: {', '.join(KEYS)}" for k in raw if k not in KEYS]
    net = Network()
    if "address" in raw:
        problem = check_address(str(raw["address"]))
        if problem:
            errors.append(f"{path}.address: {problem}")
        else:
            net = replace(net, address=str(raw["address"]))
    if "rtp_ports" in raw:
        text = str(raw["rtp_ports"]).replace(" ", "")
        try:
            low, high = (int(x) for x in text.split("-", 1))
            if not (1024 <= low and high <= 65535 and high - low >= 99):
                raise ValueError
            net = replace(net, rtp_ports=(low, high))
        except ValueError:
            errors.append(f"{path}.rtp_ports: {raw['rtp_ports']!r} not allowed; a range LOW-HIGH within "
                          "1024-65535 of at least 100 ports, e.g. 20000-29999")
    if "tls_ca" in raw:
        net = replace(net, tls_ca=str(raw["tls_ca"]))
    if "srtp" in raw:
        if raw["srtp"] not in SRTP:
            errors.append(f"{path}.srtp: {raw['srtp']!r} not allowed; allowed: {', '.join(SRTP)}")
        else:
            net = replace(net, srtp=raw["srtp"])
    return net, errors
