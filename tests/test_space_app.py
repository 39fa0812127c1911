"""Space mode as a Hugging Face Space starts it: the published files alone, the Space's
environment, the Space's Python; and what a stranger's plain HTTP client can reach."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml

from browser import ROOT, RunningApp, free_port, start_app, stop_app
from style_studio.visitors.registry import visitor_id

COOKIE = "style_studio_visitor"


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---", 2)[1])


def publish_module():
    spec = importlib.util.spec_from_file_location("publish_space",
                                                  ROOT / "scripts" / "publish_space.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pip_resolves(python_version: str, report: Path) -> subprocess.CompletedProcess[str]:
    """What the Space builder's `pip install -r requirements.txt` would find for that
    Python, as binary wheels, without installing anything."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
         "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
         "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
         "--platform", "linux_x86_64", "-r", str(ROOT / "requirements.txt"),
         "--report", str(report)], capture_output=True, text=True, timeout=600)


def test_the_spaces_python_finds_a_wheel_for_every_requirement(tmp_path):
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    version = str(meta["python_version"])
    assert version == f"{sys.version_info.major}.{sys.version_info.minor}"  # what we test on
    result = pip_resolves(version, tmp_path / "report.json")
    assert result.returncode == 0, result.stderr[-2000:]
    found = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
             for item in json.loads((tmp_path / "report.json").read_text())["install"]}
    pinned = [line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")]
    for name, version_pinned in pinned:
        assert found[canonical(name)] == version_pinned
    assert "torch" in found  # the Space installs requirements.txt alone: torch must be there
    # The check can fail: Python 3.10 (a Space's default) has no numpy 2.4 wheel.
    assert pip_resolves("3.10", tmp_path / "old.json").returncode != 0


def test_the_published_files_launch_in_space_mode_where_the_space_says(tmp_path):
    files = publish_module().space_files()
    assert {"app.py", "requirements.txt", "README.md"} <= set(files)
    assert any(f.startswith("assets/toy-sd15/") and f.endswith(".safetensors") for f in files)
    assert not any(f.startswith((".venv/", "tests/", "workspace/", ".git/")) for f in files)
    copy = tmp_path / "space"
    for name in files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    port = free_port()
    env = {"SPACE_ID": "someone/style-studio", "SPACE_HOST": "someone-style-studio.hf.space",
           "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": str(port),
           "STYLE_STUDIO_HOME": str(tmp_path / "data")}
    app = start_app(tmp_path / "data", env=env, root=copy, flags=False)
    try:
        assert _listening(app, port) == "0.0.0.0"
        assert "public demo" in app.log.read_text()
    finally:
        stop_app(app)


def test_at_home_the_app_listens_on_this_machine_only(app_url):
    assert _listening(app_url, int(app_url.url.rsplit(":", 1)[1].strip("/"))) == "127.0.0.1"


def _listening(app: RunningApp, port: int) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for conn in psutil.Process(app.process.pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                return conn.laddr.ip
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}:\n{app.log_tail()}")


@pytest.fixture
def space_app(tmp_path):
    app = start_app(tmp_path / "space-data", extra_args=["--space"])
    yield app
    stop_app(app)


def _get(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _visitor(app: RunningApp) -> tuple[str, str]:
    """A new visitor: the secret the app hands a fresh browser, and its cookie header."""
    status, headers, _ = _get(str(app))
    assert status == 200
    set_cookie = headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=") and "HttpOnly" in set_cookie
    secret = set_cookie.split(";", 1)[0].split("=", 1)[1]
    return secret, f"{COOKIE}={secret}"


def test_a_visitors_files_answer_only_that_visitor(space_app):
    alice, alice_cookie = _visitor(space_app)
    _, bob_cookie = _visitor(space_app)
    cache = space_app.workspace / "gradio-cache"
    served = cache / "visitors" / visitor_id(alice) / "thumbs" / "pic.png"
    served.parent.mkdir(parents=True)
    served.write_bytes(b"\x89PNG alice's picture")
    upload = cache / "0123abcd" / "anonymous.bin"  # what an anonymous POST /upload leaves
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"x" * 1000)
    url = f"{space_app}gradio_api/file={served}"
    assert _get(url, alice_cookie)[0] == 200
    assert _get(url, alice_cookie)[2] == b"\x89PNG alice's picture"
    assert _get(url, bob_cookie)[0] == 404
    assert _get(url)[0] == 404
    for other in (upload, space_app.workspace / "visitors", Path("/etc/hostname")):
        assert _get(f"{space_app}gradio_api/file={other}", alice_cookie)[0] == 404
