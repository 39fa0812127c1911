"""Leftovers in Gradio's upload cache (an upload cancelled before its import, copies served
to pages long closed) are removed when the app starts, and only from the workspace's own
cache: fewer stray copies of an artist's images, nothing for erasure to chase."""

from __future__ import annotations

import os

import app
from browser import start_app, stop_app
from style_studio.base.workspace import Workspace


def _leftovers(cache):
    upload = cache / "0f3a9c" / "heron.png"
    served = cache / "served" / "img123" / "thumb.webp"
    for path, data in ((upload, b"\x89PNG leftover upload"), (served, b"RIFF served copy")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return upload, served


def test_emptying_removes_files_and_folders_but_never_follows_links(tmp_path):
    workspace = Workspace(tmp_path / "ws").ensure()
    assert workspace.empty_upload_cache() == (0, 0)  # nothing there yet
    upload, served = _leftovers(workspace.upload_cache)
    outside = tmp_path / "my-picture.png"
    outside.write_bytes(b"not the app's to delete")
    link = workspace.upload_cache / "link"
    link.symlink_to(outside)
    expected = upload.stat().st_size + served.stat().st_size + link.lstat().st_size
    assert workspace.empty_upload_cache() == (3, expected)
    assert workspace.upload_cache.is_dir() and list(workspace.upload_cache.iterdir()) == []
    assert outside.read_bytes() == b"not the app's to delete"


def test_a_cache_the_artist_pointed_elsewhere_is_left_alone(tmp_path, monkeypatch):
    workspace = Workspace(tmp_path / "ws").ensure()
    theirs = tmp_path / "their-gradio-cache"
    upload, _ = _leftovers(theirs)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(theirs))
    app.clear_leftovers(workspace)
    assert upload.is_file()
    own_upload, _ = _leftovers(workspace.upload_cache)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(workspace.upload_cache))
    app.clear_leftovers(workspace)
    assert not own_upload.exists()


def test_the_app_clears_its_cache_at_start(tmp_path):
    workspace = Workspace(tmp_path / "ws").ensure()
    upload, served = _leftovers(workspace.upload_cache)
    running = start_app(workspace.root)
    try:
        assert not upload.exists() and not served.exists()
        assert "cleared 2 file(s)" in running.log.read_text()
    finally:
        stop_app(running)
    assert os.path.isdir(workspace.upload_cache)
