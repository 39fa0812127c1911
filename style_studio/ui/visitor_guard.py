"""Space mode: each browser is a visitor, and a visitor fetches only their own files.

An ASGI middleware in front of Gradio. The first request from a browser gets a random
secret in an HttpOnly cookie (SameSite=None, Secure and Partitioned behind https, so it
survives the Hugging Face page's iframe; Lax on plain http). Every handler finds the
visitor's studio from that cookie (`ui/studios.py`), so one visitor never reads or
changes another's styles, images, captions, consent or jobs. A file address
(`/gradio_api/file=...`) is answered only when the file lies in the requesting visitor's
own served folder; anything else — another visitor's copy, an anonymous upload, a path on
the server — is 404, with or without cookies.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import unquote

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "style_studio_visitor"
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/", "/file=", "/file/")
MAX_AGE_S = 30 * 24 * 3600


def visitor_secret(cookie_header: str | None) -> str | None:
    """The visitor's secret from a Cookie header, if it looks like one we made."""
    if not cookie_header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:  # a malformed Cookie header is no visitor
        return None
    morsel = jar.get(COOKIE)
    value = morsel.value if morsel else ""
    return value if 30 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum() \
        else None


class VisitorGuard:
    """Gives each browser a visitor secret and keeps file addresses to their owner."""

    def __init__(self, app: ASGIApp, served_dir: Callable[[str], Path],
                 visitor_id: Callable[[str], str]):
        self.app = app
        self.served_dir = served_dir
        self.visitor_id = visitor_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        secret = visitor_secret(headers.get("cookie"))
        fresh = secret is None
        if fresh:
            secret = secrets.token_urlsafe(32)
            cookie = f"{COOKIE}={secret}"
            others = headers.get("cookie")
            raw = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
            raw.append((b"cookie", (f"{others}; {cookie}" if others else cookie).encode()))
            scope = {**scope, "headers": raw}
        path = scope.get("path", "")
        foreign = path.startswith(FILE_ROUTES) and not self._own_file(path, secret)
        if scope["type"] == "http" and foreign:
            await PlainTextResponse("Not found.", status_code=404)(scope, receive, send)
            return
        if not fresh or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = headers.get("x-forwarded-proto", scope.get("scheme", "http")) == "https"
        attributes = ("; SameSite=None; Secure; Partitioned" if secure else "; SameSite=Lax")
        set_cookie = f"{COOKIE}={secret}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly{attributes}"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", set_cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _own_file(self, path: str, secret: str) -> bool:
        route = next(r for r in FILE_ROUTES if path.startswith(r))
        wanted = unquote(path[len(route):])
        if not wanted.startswith("/"):
            wanted = "/" + wanted
        try:
            target = Path(wanted).resolve()
            own = self.served_dir(self.visitor_id(secret)).resolve()
        except (OSError, ValueError):
            return False
        return target.is_relative_to(own) and target != own


def visitor_middleware(served_dir: Callable[[str], Path],
                       visitor_id: Callable[[str], str]) -> Middleware:
    return Middleware(VisitorGuard, served_dir=served_dir, visitor_id=visitor_id)
