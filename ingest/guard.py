"""Where Kabar may fetch from: the public web, unless a deployment opens more.

Every URL Kabar fetches (a URL to ingest, a feed entry's link, each redirect) goes
through :meth:`FetchPolicy.check` first. The host is resolved once; when any of its
addresses is loopback, private, link-local (cloud metadata at 169.254.169.254 among
them), multicast, reserved or unspecified, or one of this machine's own addresses, the
URL is refused with an :class:`~rag.errors.InputError` that names it and the reason.
The fetcher then connects to the address that was checked (:class:`Target`), so a
second DNS answer (rebinding) never reaches a connection.

``KABAR_FETCH_ALLOW`` opens hosts or networks a deployment needs (``intranet.example,
10.20.0.0/16``). ``loopback=True`` is the command line's policy on a user's own machine:
a URL the user typed that names this machine (``http://localhost:8000/page.html``) is
fetched, and so are its redirects and its feed entries while they stay on loopback; a
public page or feed never leads into it. Ports that this process serves on
(:func:`serving_on`) stay refused on loopback even where loopback is open, so the HTTP
API cannot be made to call itself.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Union
from urllib.parse import urlsplit

from rag.errors import ConfigError, InputError
from rag.settings import Settings

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_SERVING: set[int] = set()
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
ALLOW_HINT = "Kabar fetches only the public web; KABAR_FETCH_ALLOW opens hosts or networks"


def serving_on(port: int) -> None:
    """Record that this process serves on ``port``: fetches never go to it on this machine."""
    _SERVING.add(int(port))


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to say the host is."""

    url: str
    host: str  # as in the URL: the Host header and the TLS server name
    port: int
    address: Address
    loopback: bool

    def connect_url(self) -> str:
        """``url`` with its host replaced by the checked address (IPv6 in brackets)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{literal}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    def host_header(self) -> str:
        default = 443 if urlsplit(self.url).scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True)
class FetchPolicy:
    """Which addresses a fetch may reach; see the module docstring."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[Network, ...] = ()
    loopback: bool = False
    resolve: object = field(default=None, compare=False)  # getaddrinfo, replaceable at the network boundary

    refused_ports: frozenset[int] = frozenset()  # on this machine, whatever else is open

    @classmethod
    def for_settings(cls, settings: Settings, loopback: bool = False) -> "FetchPolicy":
        """The policy of a deployment: ``KABAR_FETCH_ALLOW``, and the local LLM server's port refused."""
        base = cls.parse(settings.fetch_allow, loopback)
        local_llm = not settings.llm_base_url
        return replace(base, refused_ports=frozenset({settings.llm_port} if local_llm else set()))

    @classmethod
    def parse(cls, allow: str | tuple[str, ...] = "", loopback: bool = False) -> "FetchPolicy":
        """A policy from ``KABAR_FETCH_ALLOW``'s text: hosts and networks, comma or space separated."""
        items = allow.replace(",", " ").split() if isinstance(allow, str) else [a.strip() for a in allow]
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in filter(None, items):
            try:
                networks.append(ipaddress.ip_network(item.replace("[", "").replace("]", ""), strict=False))
            except ValueError:
                if "/" in item or not _HOST.fullmatch(item):
                    raise ConfigError(f"KABAR_FETCH_ALLOW: {item!r} is neither a host name nor a network "
                                      "(e.g. intranet.example, 10.20.0.0/16)") from None
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), loopback)

    def check(self, url: str, via: Target | None = None) -> Target:
        """Where ``url`` may be fetched from, or an InputError naming it and why not.

        ``via``: the checked page this URL was reached from (a redirect, a feed's entry).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InputError(url, f"is a {parts.scheme or 'schemeless'} URL; Kabar fetches http and https only")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise InputError(url, "has no host name")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InputError(url, "has an invalid port") from None
        addresses = self._addresses(url, host, port)
        opened = host in self.allow_hosts
        for address in addresses:
            problem = self._refusal(address, port, opened, via)
            if problem:
                said = f"is {problem}" if host == str(address) else f"resolves to {address}, {problem}"
                raise InputError(url, f"{said}; {ALLOW_HINT}")
        address = addresses[0]
        return Target(url, host, port, address, address.is_loopback)

    def _addresses(self, url: str, host: str, port: int) -> list[Address]:
        try:
            return [_plain(ipaddress.ip_address(host))]
        except ValueError:
            pass
        resolve = self.resolve or socket.getaddrinfo
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)  # type: ignore[operator]
        except (socket.gaierror, UnicodeError, OSError) as e:
            raise InputError(url, f"host {host} cannot be resolved ({e})") from None
        found: list[Address] = []
        for info in infos:
            try:
                address = _plain(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
            except ValueError:
                continue
            if address not in found:
                found.append(address)
        if not found:
            raise InputError(url, f"host {host} resolves to no address")
        return found

    def _refusal(self, address: Address, port: int, opened: bool, via: Target | None) -> str:
        loop = address.is_loopback
        if (loop or address in own_addresses()) and (port in _SERVING or port in self.refused_ports):
            return f"port {port} of this Kabar server"
        if opened or any(address in net for net in self.allow_networks):
            return ""
        if loop and self.loopback and (via is None or via.loopback):
            return ""
        kind = _kind(address)
        if kind:
            led = " (reached from a public page)" if loop and self.loopback else ""
            return f"{kind} address{led}"
        if address in own_addresses():
            return "an address of this machine"
        return ""


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it maps."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: Address) -> str:
    """'a loopback' and the like for an address Kabar does not fetch by default; '' for a public one."""
    checks = (("is_loopback", "a loopback"), ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
              ("is_unspecified", "an unspecified"), ("is_private", "a private"), ("is_reserved", "a reserved"))
    for attr, kind in checks:
        if getattr(address, attr):
            return kind
    if not address.is_global:
        return "a non-public"
    return ""


@lru_cache(maxsize=1)
def own_addresses() -> frozenset[Address]:
    """This machine's addresses as far as its name and its outgoing route tell (no packet is sent)."""
    found: set[Address] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(_plain(ipaddress.ip_address(str(info[4][0]).split("%")[0])))
    except (OSError, ValueError):
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))  # UDP connect picks the outgoing address and sends nothing
                found.add(_plain(ipaddress.ip_address(s.getsockname()[0].split("%")[0])))
        except (OSError, ValueError):
            pass
    return frozenset(found)
