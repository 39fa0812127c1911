"""Browser-test harness: the real app in a subprocess, driven by headless Chromium.

Fixtures (re-exported by conftest.py):
- `app_workspace`: the folder the app will use; override it in a test module to seed
  the workspace through `Studio` *before* the app starts (two processes must never
  write one store at the same time).
- `app_url`: starts `app.py` on a free port, yields a `RunningApp` (str() is the URL,
  `.workspace` the folder, `.log` the server output), stops it afterwards.
- `page`: a Playwright page in Debian's Chromium; `screenshot(page, name)` saves a PNG
  under test-artifacts/ for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("STYLE_STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 120


@dataclass
class RunningApp:
    url: str
    workspace: Path
    process: subprocess.Popen
    log: Path

    def __str__(self) -> str:
        return self.url

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(workspace: Path, extra_args: list[str] | None = None,
              env: dict[str, str] | None = None, root: Path = ROOT,
              flags: bool = True) -> RunningApp:
    """`app.py` in `root`, on a free port; `flags=False` starts it the way a Hugging Face
    Space does (`python app.py`, everything else from `env`, port GRADIO_SERVER_PORT)."""
    port = int((env or {}).get("GRADIO_SERVER_PORT") or free_port())
    workspace.mkdir(parents=True, exist_ok=True)
    log = workspace.parent / f"app-{port}.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1", "STYLE_STUDIO_TORCH_THREADS": "1",
           "OMP_NUM_THREADS": "1", **(env or {})}  # one torch thread: 2 cores, shared
    env.pop("GRADIO_TEMP_DIR", None)
    cmd = [sys.executable, str(root / "app.py"), *(extra_args or [])]
    if flags:
        cmd += ["--workspace", str(workspace), "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    app = RunningApp(f"http://127.0.0.1:{port}/", workspace, process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The app exited at start-up:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url, timeout=2) as response:
                if response.status == 200:
                    return app
        except OSError:
            time.sleep(0.5)
    stop_app(app)
    raise RuntimeError(f"The app did not answer within {START_TIMEOUT_S} s:\n{app.log_tail()}")


def stop_app(app: RunningApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(15)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait(5)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def app_workspace(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)  # set by conftest's report hook
    return bool(report and report.failed)


@pytest.fixture
def app_url(app_workspace: Path, request: pytest.FixtureRequest) -> Iterator[RunningApp]:
    app = start_app(app_workspace)
    yield app
    stop_app(app)
    if _failed(request):  # keep the server's side of a failure (a flake is hard to rerun)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(app.log, ARTIFACTS / f"failed-{request.node.name[:80]}.log")


@pytest.fixture(scope="session")
def chromium_browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test`, which installs it "
                    "(apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser, request: pytest.FixtureRequest):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    if _failed(request):
        screenshot(tab, f"failed-{request.node.name[:80]}")
    context.close()


def open_tab(page, label: str) -> None:
    """Click a tab by its label and wait until it is the selected one."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=label).click()
    expect(page.get_by_role("tab", name=label)).to_have_attribute("aria-selected", "true")


def close_toasts(page) -> None:
    """Close what toasts are left, for a clean screenshot (some close on their own)."""
    from playwright.sync_api import Error as PlaywrightError

    for button in page.locator(".toast-close").all():
        with contextlib.suppress(PlaywrightError):  # it may close itself meanwhile
            button.click(timeout=2_000)


def fill_number(page, elem_id: str, value: int) -> None:
    """Type into a gr.Number and leave it, so Gradio sees the change."""
    field = page.locator(f"#{elem_id} input").first
    field.fill(str(value))
    field.press("Tab")
