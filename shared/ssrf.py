"""Webhook destinations are checked after DNS resolution, and the connection goes to the
very address that was checked, so DNS rebinding cannot slip a private address through.

Any resolved address that is not globally routable is refused (loopback, RFC 1918,
link-local including 169.254.169.254, unique-local IPv6, multicast, unspecified, reserved,
shared CGNAT space), as is any IPv6 form that embeds one (IPv4-mapped, 6to4, Teredo),
unless it falls inside ``INFERQ_WEBHOOK_ALLOWED_NETWORKS``.

The API applies the same rule at submit time to a host written as an address, so
``http://169.254.169.254/`` is a 422 at once rather than a dead webhook a day later.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class DeniedDestination(Exception):
    """The webhook host resolves to an address we refuse to connect to."""


def parse_networks(text: str) -> list[Network]:
    """``"127.0.0.0/8, ::1/128"`` as networks; raises ValueError on a bad entry."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo)."""
    if address.version != 6:
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        found.extend(address.teredo)
    return [a for a in found if a is not None]


def denial_reason(address: IPAddress, allowed: Iterable[Network] = ()) -> str | None:
    """Why ``address`` is refused, or None when a webhook may go there."""
    candidates = [address, *embedded_ipv4(address)]
    allowed = list(allowed)
    if any(c in network for c in candidates for network in allowed if c.version == network.version):
        return None
    for candidate in candidates:
        for name in ("is_loopback", "is_private", "is_link_local", "is_multicast",
                     "is_unspecified", "is_reserved"):
            if getattr(candidate, name):
                return f"{address} is {name[3:].replace('_', '-')}"
        if not candidate.is_global:
            return f"{address} is not globally routable"
    return None


NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]*[0-9][0-9a-fA-FxX.]*")
"""Hosts a resolver may read as an IPv4 address in a legacy form (``2130706433``, ``0x7f.1``)."""


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host spells out, in any form a resolver accepts, or None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def resolve_allowed(host: str, port: int, allowed: Iterable[Network] = (),
                    resolver: Resolver = system_resolver) -> str:
    """The address to connect to; ``DeniedDestination`` if any resolved address is refused."""
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
    except (OSError, ValueError) as exc:
        raise DeniedDestination(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise DeniedDestination(f"{host} resolves to no address")
    for address in addresses:
        reason = denial_reason(address, allowed)
        if reason:
            raise DeniedDestination(f"{host} resolves to a denied address: {reason}")
    return str(addresses[0])
