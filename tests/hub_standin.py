"""A local stand-in for the Hugging Face Hub's HTTP API, just enough for huggingface_hub's
`create_repo` and `upload_folder` (repo create, YAML check, preupload, commit): it answers
"regular" for every file (no LFS), so the commit carries each file's bytes, which it keeps.
Point huggingface_hub at it with `huggingface_hub.constants.ENDPOINT = hub.endpoint`."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHub:
    """Start with `start()`, stop with `stop()`; `repos` and `files` hold what arrived."""

    def __init__(self) -> None:
        self.repos: list[dict[str, Any]] = []  # create_repo request bodies
        self.files: dict[str, dict[str, bytes]] = {}  # repo id -> path in repo -> bytes
        self.tokens: set[str] = set()  # the Authorization headers seen on writes
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(404, {"error": "not in the stand-in"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization"):
                    hub.tokens.add(self.headers["Authorization"])
                if self.path == "/api/repos/create":
                    body = json.loads(raw)
                    hub.repos.append(body)
                    repo = f"{body.get('organization')}/{body['name']}"
                    return self._send(200, {"url": f"{hub.endpoint}/{repo}"})
                if self.path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if "/preupload/" in self.path:
                    files = json.loads(raw)["files"]
                    return self._send(200, {"files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files]})
                if self.path.startswith("/api/models/") and "/commit/" in self.path:
                    repo = self.path[len("/api/models/"):].split("/commit/")[0]
                    got = hub.files.setdefault(repo, {})
                    for line in raw.decode().splitlines():
                        item = json.loads(line)
                        if item.get("key") == "file":
                            got[item["value"]["path"]] = base64.b64decode(
                                item["value"]["content"])
                    oid = "0" * 40
                    return self._send(200, {"commitUrl": f"{hub.endpoint}/{repo}/commit/{oid}",
                                            "commitOid": oid, "success": True})
                return self._send(404, {"error": "not in the stand-in"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LocalHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
