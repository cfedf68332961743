"""URL safety, shared by the API (validating a job) and the worker (fetching its source).

A user-given URL must be https, name a host (no IP literal), and every address the name
resolves to must be public. The fetcher then connects to one of the vetted addresses itself,
so a second DNS answer (DNS rebinding) cannot steer it to an internal one.

Tests and local development may allow plain http for named hosts and private networks; those
options are constructor arguments fed from settings only, never from a request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from src.domain.errors import ReelqueueError, ValidationError
from src.domain.sources import parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""Maps (host name, port) to the addresses to connect to, as strings."""

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeUrl(ReelqueueError):
    """The URL is not allowed: wrong scheme, an IP literal, or an address that is not public."""


class UnresolvableHost(ReelqueueError):
    """The host name has no address right now (DNS failure); asking later may work."""


@dataclass(frozen=True, kw_only=True)
class VettedUrl:
    """A URL that passed the guard, with the addresses a connection may use."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class UrlPolicy:
    """What the guard lets through. The defaults are the only ones user input ever meets."""

    resolver: Resolver = field(default_factory=lambda: system_resolver)
    allow_http_hosts: frozenset[str] = frozenset()
    allowed_private_networks: tuple[Network, ...] = ()

    @classmethod
    def build(cls, *, resolver: Resolver | None = None, allow_http_hosts: Collection[str] = (),
              allowed_private_networks: Collection[str] = ()) -> UrlPolicy:
        return cls(
            resolver=resolver or system_resolver,
            allow_http_hosts=frozenset(h.lower() for h in allow_http_hosts),
            allowed_private_networks=tuple(ipaddress.ip_network(n) for n in allowed_private_networks),
        )


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"{host} could not be resolved ({exc})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_public_url(field: str, url: str, *, policy: UrlPolicy | None = None) -> None:
    """The API's guard: a :class:`ValidationError` for ``field`` unless ``url`` is safe to fetch."""
    try:
        vet_url(url, policy=policy or UrlPolicy())
    except (UnsafeUrl, UnresolvableHost) as exc:
        raise ValidationError({field: str(exc)}) from exc


def vet_url(url: str, *, policy: UrlPolicy) -> VettedUrl:
    try:
        parts = parse_url("url", url)  # the one URL parser: whatever urllib refuses is unsafe
    except ValidationError as exc:
        raise UnsafeUrl(exc.fields["url"][0]) from None
    _check_scheme(parts.scheme, parts.host, policy)
    _check_host(parts.host, parts.username, parts.password)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = tuple(_vetted_address(a, parts.host, policy) for a in _resolve(policy, parts.host, port))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return VettedUrl(scheme=parts.scheme, host=parts.host, port=port, target=target, addresses=addresses)


def is_public(address: IPAddress) -> bool:
    """True for an address anyone on the internet can reach; False for every internal kind."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    return not (
        address.is_loopback or address.is_private or address.is_link_local or address.is_reserved
        or address.is_multicast or address.is_unspecified or address in CGNAT
        or not address.is_global
    )


def _check_scheme(scheme: str, host: str, policy: UrlPolicy) -> None:
    if scheme == "https" or (scheme == "http" and host in policy.allow_http_hosts):
        return
    raise UnsafeUrl("only https URLs are accepted")


def _check_host(host: str, username: str | None, password: str | None) -> None:
    if not host:
        raise UnsafeUrl("the URL has no host")
    if username or password:
        raise UnsafeUrl("URLs with credentials are not accepted")
    if _ip_literal(host) is not None:
        raise UnsafeUrl("the URL must name a host, not an IP address")


def _resolve(policy: UrlPolicy, host: str, port: int) -> Sequence[str]:
    addresses = policy.resolver(host, port)
    if not addresses:
        raise UnresolvableHost(f"{host} has no address")
    return addresses


def _vetted_address(raw: str, host: str, policy: UrlPolicy) -> IPAddress:
    address = ipaddress.ip_address(raw.split("%", 1)[0])
    if is_public(address) or any(address in net for net in policy.allowed_private_networks):
        return address
    raise UnsafeUrl(f"{host} resolves to an internal address, which is not allowed")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # shorthand forms the resolver would still accept: 2130706433, 0x7f.1, 127.1
        return ipaddress.ip_address(socket.inet_aton(host))
    except (OSError, ValueError):  # ValueError: a NUL byte; UnicodeError is one too
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
