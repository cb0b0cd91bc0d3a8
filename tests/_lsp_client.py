"""A minimal LSP client over stdio (JSON-RPC with Content-Length headers), for the server's end-to-end
tests and the latency benchmark: it starts `convplan lsp` as a real editor would and speaks to it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Client:
    def __init__(self, command=None, init_options=None, capabilities=None, root: Path = ROOT):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(command or [sys.executable, "-m", "convplan", "lsp"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.next_id = 0
        self.responses: dict[int, dict] = {}
        self.diagnostics: dict[str, list] = {}  # uri -> the latest published list
        self.published: dict[str, int] = {}  # uri -> how many times it was published
        self.arrival: dict[str, float] = {}  # uri -> when it was last published (perf_counter)
        self.versions: dict[str, int | None] = {}  # uri -> the document version of its latest diagnostics
        self.server_requests: list[dict] = []  # requests the server sent (registrations), in order
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.capabilities = self.request("initialize", {"processId": None, "rootUri": root.as_uri(),
                                                        "capabilities": capabilities or {},
                                                        "initializationOptions": init_options})
        self.notify("initialized", {})

    # -- the wire -------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(out.read(length))
            self._received(message)

    def _received(self, message: dict) -> None:
        with self.cond:
            if "id" in message and "method" not in message:
                self.responses[message["id"]] = message
            elif message.get("method") == "textDocument/publishDiagnostics":
                uri = message["params"]["uri"]
                self.diagnostics[uri] = message["params"]["diagnostics"]
                self.published[uri] = self.published.get(uri, 0) + 1
                self.arrival[uri] = time.perf_counter()
                self.versions[uri] = message["params"].get("version")
            elif "id" in message:  # a request from the server (registration, configuration): accept it
                self.server_requests.append(message)
                self._send({"id": message["id"], "result": None})
            self.cond.notify_all()

    # -- requests -------------------------------------------------------------------------

    def request(self, method: str, params, timeout: float = 60.0):
        with self.cond:
            self.next_id += 1
            number = self.next_id
        self._send({"id": number, "method": method, "params": params})
        with self.cond:
            if not self.cond.wait_for(lambda: number in self.responses, timeout):
                raise TimeoutError(f"{method}: no answer in {timeout} s; server stderr: {self.server_stderr()}")
            reply = self.responses.pop(number)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def notify(self, method: str, params) -> None:
        self._send({"method": method, "params": params})

    def wait_published(self, uri: str, count: int, timeout: float = 60.0) -> list:
        """The diagnostics of `uri` once it has been published more than `count` times."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.published.get(uri, 0) > count, timeout):
                raise TimeoutError(f"no diagnostics for {uri}; server stderr: {self.server_stderr()}")
            return self.diagnostics[uri]

    # -- documents ------------------------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> list:
        """Open a file (its text on disk unless given); the diagnostics published for it."""
        uri = path.resolve().as_uri()
        count = self.published.get(uri, 0)
        text = path.read_text(encoding="utf-8") if text is None else text
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "plan", "version": 1,
                                                              "text": text}})
        return self.wait_published(uri, count)

    def change(self, path: Path, text: str, version: int = 2) -> list:
        """Replace the whole text; the diagnostics published after it."""
        uri = path.resolve().as_uri()
        count = self.published.get(uri, 0)
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"text": text}]})
        return self.wait_published(uri, count)

    def close(self, path: Path) -> None:
        """Close a document, once the server has withdrawn its diagnostics."""
        uri = path.resolve().as_uri()
        count = self.published.get(uri, 0)
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        self.wait_published(uri, count)

    def at(self, method: str, path: Path, line: int, character: int, **extra):
        """A request about a position (0-based, as LSP counts)."""
        return self.request(method, {"textDocument": {"uri": path.resolve().as_uri()},
                                     "position": {"line": line, "character": character}, **extra})

    def server_stderr(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-3000:]

    def shutdown(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except (TimeoutError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self.stderr.close()
