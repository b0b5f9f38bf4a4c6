"""Start `ewasm node` as a subprocess on a free localhost port, for end-to-end tests and
the load benchmark."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class Node:
    def __init__(self, db: Path, *extra: str, timeout: float = 60.0):
        self.db = db
        cmd = [sys.executable, "-m", "apps.cli", "node", "--db", str(db), "--port", "0",
               *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        self.banner: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise RuntimeError(f"node exited ({self.proc.wait()}): {err}")
            self.banner.append(line.rstrip())
            found = re.search(r"Listening on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("node did not start")

    def rpc(self, method: str, *params, raw: bytes | None = None) -> dict | list:
        body = raw if raw is not None else json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code
