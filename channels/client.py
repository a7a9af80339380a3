"""Who is really calling: the client address, scheme and host behind trusted reverse proxies.

`X-Forwarded-For`, `-Proto` and `-Host` are believed only when the connection comes from an
address in MINYI_TRUSTED_PROXIES; otherwise anyone could claim any address (and walk past an SMS
allow list or a rate limit). Used by the SMS allow list, the rate limits and Twilio's signed URL.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiohttp import web

from .settings import SettingError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(variable: str, value: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 127.0.0.1`: addresses or CIDR networks, refused by name when wrong."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingError(
                f"{variable}: {item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    if not networks:
        raise SettingError(f"{variable}: list at least one address, or leave it unset")
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class Clients:
    """Reads a request's real client through the proxies we trust (none by default)."""

    trusted: tuple[Network, ...] = ()

    def _trusts(self, text: str | None) -> bool:
        address = _address(text or "")
        return address is not None and any(address in network for network in self.trusted)

    def _via_proxy(self, request: web.Request) -> bool:
        return bool(self.trusted) and self._trusts(request.remote)

    def address(self, request: web.Request) -> str:
        """The client's address: the peer, or, behind trusted proxies, the right-most address
        of X-Forwarded-For that is not one of them (the left part is the client's to write)."""
        peer = request.remote or ""
        if not self._via_proxy(request):
            return peer
        hops = [
            h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
        ]
        for hop in reversed([h for h in hops if h]):
            if _address(hop) is None:
                return peer  # a malformed chain: trust nothing in it
            if not self._trusts(hop):
                return hop
        return peer

    def scheme(self, request: web.Request) -> str:
        if self._via_proxy(request):
            given = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            if given in ("http", "https"):
                return given
        return request.scheme

    def host(self, request: web.Request) -> str:
        if self._via_proxy(request):
            given = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
            if given:
                return given
        return request.host

    def url(self, request: web.Request) -> str:
        """The URL the client called (path and query included), as a proxy in front saw it."""
        return f"{self.scheme(request)}://{self.host(request)}{request.path_qs}"
