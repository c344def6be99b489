"""Personal links: the one place that decides the address a link starts with (the public URL when
one is set, else the address the browser reached, else the server's own host and port) and
builds `BASE/?token=TOKEN` on it. The CLI, the demo and every screen that shows a link call it."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from review_app.errors import InputError

if TYPE_CHECKING:
    from review_app.settings import Settings

__all__ = [
    "LinkBase",
    "browser_base",
    "check_public_url",
    "link_base",
    "on_this_machine_only",
    "path_prefix",
    "personal_link",
    "server_address",
]

PUBLIC_URL_ENV = "REVIEW_APP_PUBLIC_URL"
_EXAMPLE = "e.g. https://review.example.com or https://example.com/review/"
# Addresses a server listens on that no browser can open: a link uses this machine instead.
_ANY_ADDRESS = {"", "0.0.0.0", "::"}
_UNSAFE = re.compile(r'[<>"`{}|\\^\x00-\x1f\x7f]')


@dataclass(frozen=True)
class LinkBase:
    """The address personal links start with (no trailing slash) and where it came from:
    "public" (the public URL setting), "browser" (the address the browser reached) or
    "server" (the server's host and port)."""

    url: str
    source: str

    def note(self, option: bool = False) -> str:
        """One line saying which address links use and how to change it (`option`: the command
        also takes --public-url)."""
        if self.source == "public":
            return f"links use {self.url}, the public URL"
        how = f"{PUBLIC_URL_ENV} or --public-url" if option else PUBLIC_URL_ENV
        return f"links use {self.url} (set {how} to change)"


def check_public_url(text: str) -> str:
    """The public URL `text` in its one form, without a trailing slash (`https://host/review`);
    InputError naming what is wrong when it is not an http(s) address of a host with at most a
    path prefix."""
    text = text.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"public URL {text!r} is not an address ({exc}); {_EXAMPLE}") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"public URL {text!r} must start with http:// or https://; {_EXAMPLE}")
    if not parts.hostname:
        raise InputError(f"public URL {text!r} names no host; {_EXAMPLE}")
    if parts.username is not None or parts.password is not None:
        raise InputError(f"public URL {text!r} must not carry a user name or password")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        # Links add their own `?token=`; a query here would be lost or garble them.
        raise InputError(f"public URL {text!r} must not have a query or fragment; {_EXAMPLE}")
    if any(c.isspace() for c in text):
        raise InputError(f"public URL {text!r} must not contain spaces")
    if _UNSAFE.search(text):
        # Characters a browser would escape anyway: written as they are, a copied link breaks.
        raise InputError(f"public URL {text!r} has a character a URL cannot hold as it is")
    path = parts.path.rstrip("/")
    if "//" in path or any(segment in (".", "..") for segment in path.split("/")):
        raise InputError(f"public URL {text!r} has an unusable path {parts.path!r}; {_EXAMPLE}")
    if port == 0:
        raise InputError(f"public URL {text!r}: a port is between 1 and 65535")
    netloc = _host_for_url(parts.hostname)
    # `https://host:443` and `https://host` are one address; links use the shorter.
    if port is not None and port != _default_port(parts.scheme):
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{path}"


def path_prefix(public_url: str) -> str:
    """The path a public URL puts the app under (`review` for `https://host/review`), which the
    server must serve it on too; "" at the root."""
    return urlsplit(public_url).path.strip("/")


def server_address(host: str, port: int) -> str:
    """The address of a server listening on `host`:`port`, as a browser on this machine opens
    it (a server listening on every interface is opened through 127.0.0.1)."""
    host = "127.0.0.1" if host in _ANY_ADDRESS else host
    return f"http://{_host_for_url(host)}:{port}"


def browser_base(page_url: str | None, page_path: str) -> str | None:
    """The app's address as the browser reached it, from the address of the page it shows
    (`https://host/review/people` on page `people` -> `https://host/review`); None when the
    browser did not say."""
    if not page_url:
        return None
    parts = urlsplit(page_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path = parts.path.rstrip("/")
    if page_path and (path == f"/{page_path}" or path.endswith(f"/{page_path}")):
        path = path[: -len(page_path) - 1]
    return f"{parts.scheme}://{parts.netloc}{path}"


def link_base(settings: Settings, browser_url: str | None = None) -> LinkBase:
    """The address links start with: the public URL when set; else the address the browser
    reached (`browser_url`, on a screen); else the server's host and port (the command line)."""
    if settings.public_url:
        return LinkBase(check_public_url(settings.public_url), "public")
    if browser_url:
        return LinkBase(browser_url.rstrip("/"), "browser")
    return LinkBase(server_address(settings.host, settings.port), "server")


def on_this_machine_only(url: str) -> bool:
    """Whether `url` names this machine (localhost, 127.0.0.1, ::1): a link on it opens only
    for someone on the server itself."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def personal_link(base: LinkBase | str, token: str) -> str:
    """The personal link of `token` on `base`: the bare address, which opens the holder's own
    screen."""
    url = base.url if isinstance(base, LinkBase) else base
    return f"{url.rstrip('/')}/?token={token}"


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _host_for_url(host: str) -> str:
    """`host` as it is written in a URL: an IPv6 address in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host.lower()
