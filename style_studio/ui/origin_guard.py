"""Requests only from the app's own page: an ASGI middleware on the app Gradio builds.

Any web page the artist visits can send a form or a `fetch` to http://127.0.0.1:7860;
the browser then adds that page's `Origin`. Without this check such a page could upload
files into the workspace, join the queue (import a folder, erase images, delete a style)
or call the API. So every request that carries a foreign `Origin` (including the opaque
`null` of sandboxed frames and local files) gets 403 before Gradio sees it, and nothing
is written or run. A request without `Origin` is a same-origin GET or a command-line
client (gradio_client, curl): browsers always send `Origin` on a cross-origin POST, and
`Sec-Fetch-Site` tells a cross-site one that has none. In local mode the `Host` must be a
loopback name too, so a DNS-rebinding page (evil.example resolving to 127.0.0.1) cannot
pass as the app's own origin. `/monitoring` (Gradio's traffic dashboard) is closed here.

Installed through `launch(app_kwargs={"middleware": [...]})`, see `shell.launch_options`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
CLOSED_PATHS = ("/monitoring",)
FOREIGN_SITES = frozenset({"cross-site", "same-site"})
REFUSAL = ("Style Studio only accepts requests from its own page (403): this request came "
           "from {who}. Nothing was written or run.")


@dataclass(frozen=True)
class OriginPolicy:
    """Which requests are the app's own.

    `trusted_hosts`: the names the app may be addressed by (None = any, when it listens
    on a public address whose names it cannot know); `extra_origins`: full origins also
    accepted, e.g. a Hugging Face Space's `https://<SPACE_HOST>` behind its proxy.
    """

    trusted_hosts: frozenset[str] | None = None
    extra_origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_launch(cls, host: str, space_host: str | None = None) -> OriginPolicy:
        """Local mode (a loopback address) trusts only loopback names."""
        name = host.strip("[]").lower()
        local = name in LOOPBACK or name.startswith("127.")
        extra = frozenset({f"https://{space_host.lower()}"}) if space_host else frozenset()
        return cls(trusted_hosts=LOOPBACK | {name} if local else None, extra_origins=extra)

    def refusal(self, method: str, headers: Headers) -> str | None:
        """Why this request is refused, or None when it is the app's own."""
        origin = headers.get("origin")
        host = headers.get("host", "")
        if origin is None:
            if method not in SAFE_METHODS and headers.get("sec-fetch-site") in FOREIGN_SITES:
                return REFUSAL.format(who="another site (Sec-Fetch-Site: "
                                      f"{headers.get('sec-fetch-site')})")
        elif not self.own_origin(origin, host):
            return REFUSAL.format(who=f"the page {origin!r}")
        if method not in SAFE_METHODS and not self.trusted_host(host):
            return REFUSAL.format(who=f"a page addressing it as {host!r}")
        return None

    def trusted_host(self, host: str) -> bool:
        if self.trusted_hosts is None:
            return True
        name, _ = _split_host(host)
        return name is not None and name in self.trusted_hosts

    def own_origin(self, origin: str, host: str) -> bool:
        """Same host and port as the request's `Host`; on loopback, any loopback name
        with the same port (the page at localhost:7860 talking to 127.0.0.1:7860)."""
        if origin.lower().rstrip("/") in self.extra_origins:
            return True
        try:
            parts = urlsplit(origin.lower())
            origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null", file://, browser extensions
        host_name, host_port = _split_host(host)
        if host_name is None:
            return False
        if host_port is None:  # behind a proxy the Host may carry no port
            host_port = origin_port if origin_port in (80, 443) else None
        if origin_port != host_port:
            return False
        return parts.hostname == host_name or (
            parts.hostname in LOOPBACK and host_name in LOOPBACK)


def _split_host(host: str) -> tuple[str | None, int | None]:
    """(name, port) of a Host header; (None, None) when it does not parse."""
    try:
        parts = urlsplit(f"//{host.strip().lower()}")
        return parts.hostname or None, parts.port
    except ValueError:
        return None, None


def _closed(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in CLOSED_PATHS)


class OriginGuard:
    """ASGI middleware: refuse foreign requests (403) and closed routes (404)."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if _closed(path):
            await self._deny(scope, receive, send, 404, "Not found.")
            return
        reason = self.policy.refusal(method, Headers(scope=scope))
        if reason:
            await self._deny(scope, receive, send, 403, reason)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _deny(scope: Scope, receive: Receive, send: Send, status: int,
                    text: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
            return
        await PlainTextResponse(text, status_code=status)(scope, receive, send)


def origin_middleware(policy: OriginPolicy) -> Middleware:
    """For `launch(app_kwargs={"middleware": [origin_middleware(policy)]})`."""
    return Middleware(OriginGuard, policy=policy)
