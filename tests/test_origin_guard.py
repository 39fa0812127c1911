"""Only the app's own page may change anything: foreign origins get 403 and nothing is
written or run; /monitoring is closed. Checked on the policy and on the running app."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from browser import RunningApp, start_app, stop_app
from style_studio.ui.origin_guard import OriginPolicy

FOREIGN = ("http://evil.example", "null", "https://127.0.0.1.evil.example",
           "http://127.0.0.1:1")  # the last: another app on this machine


def _headers(**values: str) -> Headers:
    return Headers({k.replace("_", "-"): v for k, v in values.items()})


def test_the_policy_accepts_the_own_origin_and_loopback_aliases_only():
    local = OriginPolicy.for_launch("127.0.0.1")
    own = _headers(host="127.0.0.1:7860", origin="http://127.0.0.1:7860")
    assert local.refusal("POST", own) is None
    assert local.refusal("POST", _headers(host="127.0.0.1:7860",
                                          origin="http://localhost:7860")) is None
    for origin in ("http://evil.example", "null", "http://localhost:7861",
                   "file://", "chrome-extension://abc", "http://127.0.0.1"):
        assert local.refusal("POST", _headers(host="127.0.0.1:7860", origin=origin)), origin
    # a same-origin GET, or a command-line client (no Origin): allowed
    assert local.refusal("GET", _headers(host="127.0.0.1:7860")) is None
    assert local.refusal("POST", _headers(host="127.0.0.1:7860")) is None
    # no Origin, but the browser says the request comes from another site
    assert local.refusal("POST", _headers(host="127.0.0.1:7860", sec_fetch_site="cross-site"))
    assert local.refusal("GET", _headers(host="127.0.0.1:7860",
                                         sec_fetch_site="cross-site")) is None  # a link
    # DNS rebinding: evil.example resolving to 127.0.0.1 is "same origin" for the browser
    assert local.refusal("POST", _headers(host="evil.example:7860",
                                          origin="http://evil.example:7860"))


def test_a_public_address_checks_the_host_it_was_reached_by():
    public = OriginPolicy.for_launch("0.0.0.0", space_host="ana-studio.hf.space")
    lan = _headers(host="192.168.1.5:7860", origin="http://192.168.1.5:7860")
    assert public.refusal("POST", lan) is None
    assert public.refusal("POST", _headers(host="192.168.1.5:7860",
                                           origin="http://localhost:7860"))
    # behind the Space's proxy: Host without a port, Origin on https
    space = _headers(host="ana-studio.hf.space", origin="https://ana-studio.hf.space")
    assert public.refusal("POST", space) is None
    assert public.refusal("POST", _headers(host="10.0.0.3:7860",
                                           origin="https://ana-studio.hf.space")) is None
    assert public.refusal("POST", _headers(host="ana-studio.hf.space",
                                           origin="https://evil.example"))


# -- the running app ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    running = start_app(tmp_path_factory.mktemp("origin") / "workspace")
    yield running
    stop_app(running)


def _send(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
          method: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _upload(app: RunningApp, origin: str | None, name: str) -> tuple[int, str]:
    boundary = "----styleStudioTest"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\nhello from {origin}\r\n"
            f"--{boundary}--\r\n").encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if origin is not None:
        headers["Origin"] = origin
    return _send(f"{app}gradio_api/upload", body, headers)


def _join(app: RunningApp, origin: str | None) -> tuple[int, str]:
    status, text = _send(f"{app}config")
    assert status == 200, text
    fn = next(d["id"] for d in json.loads(text)["dependencies"]
              if d.get("backend_fn") and not d.get("inputs"))
    body = json.dumps({"data": [], "fn_index": fn, "session_hash": "origintest",
                       "event_data": None, "trigger_id": None}).encode()
    headers = {"Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = origin
    return _send(f"{app}gradio_api/queue/join", body, headers)


def _cache_files(app: RunningApp) -> set[Path]:
    cache = app.workspace / "gradio-cache"
    return {p for p in cache.rglob("*") if p.is_file()} if cache.exists() else set()


def test_foreign_origins_get_403_and_nothing_is_written_or_run(app):
    files = _cache_files(app)
    database = (app.workspace / "studio.json").read_bytes()
    for origin in FOREIGN:
        for status, text in (_upload(app, origin, "intruder.txt"), _join(app, origin)):
            assert status == 403, (origin, status, text)
            assert "only accepts requests from its own page" in text
            assert "event_id" not in text
    status, _ = _send(f"{app}gradio_api/upload", b"--x--\r\n",
                      {"Sec-Fetch-Site": "cross-site",
                       "Content-Type": "multipart/form-data; boundary=x"})
    assert status == 403
    assert _cache_files(app) == files
    assert (app.workspace / "studio.json").read_bytes() == database
    assert "intruder" not in app.log.read_text()


def test_the_apps_own_origin_and_command_line_clients_work(app):
    port = app.url.rstrip("/").rsplit(":", 1)[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", None):
        files = _cache_files(app)
        status, text = _upload(app, origin, f"own-{origin is None}.txt")
        assert status == 200, text
        (path,) = json.loads(text)
        assert Path(path) in _cache_files(app) - files
        status, text = _join(app, origin)
        assert status == 200 and "event_id" in json.loads(text), text


def test_monitoring_is_closed(app):
    for path in ("monitoring", "monitoring/summary", "monitoring/anykey"):
        status, _ = _send(f"{app}{path}")
        assert status == 404, path
