"""One Style Studio per workspace: a second one is refused with words, never let in to
overwrite the first one's store; a crashed holder never leaves the workspace locked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from style_studio.base.errors import WorkspaceBusy
from style_studio.studio import Studio

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from style_studio.studio import Studio
studio = Studio.open(sys.argv[1])
studio.styles.create("Held", trigger="held")
print("HELD", flush=True)
time.sleep(600)
"""


def test_a_second_studio_on_the_same_workspace_is_refused(tmp_path):
    first = Studio.open(tmp_path / "ws")
    first.styles.create("Ink washes", trigger="inkwash")
    busy = rf"already open in another Style Studio \(process {os.getpid()}\)"
    with pytest.raises(WorkspaceBusy, match=busy):
        Studio.open(tmp_path / "ws")
    assert [s.name for s in first.styles.list()] == ["Ink washes"]  # untouched
    first.close()
    first.close()  # closing twice is harmless
    with Studio.open(tmp_path / "ws") as second:
        assert [s.name for s in second.styles.list()] == ["Ink washes"]
    with Studio.open(tmp_path / "other"):  # another folder is another workspace
        pass


def test_a_killed_holder_frees_the_workspace_and_the_app_says_why_it_cannot_start(tmp_path):
    workspace = tmp_path / "ws"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(workspace)], env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        app = subprocess.run([sys.executable, str(ROOT / "app.py"), "--workspace",
                              str(workspace), "--port", "0"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert app.returncode != 0
        assert "Style Studio could not start" in app.stderr
        assert f"already open in another Style Studio (process {holder.pid})" in app.stderr
        assert "Traceback" not in app.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    with Studio.open(workspace) as studio:  # the dead holder's lock went with it
        assert [s.name for s in studio.styles.list()] == ["Held"]
