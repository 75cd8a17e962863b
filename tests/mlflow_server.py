"""A real `mlflow server` process on loopback, for tests that need the tracking server itself
(an outage, authentication) rather than a sqlite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from typing import Sequence

from tests.conftest import wait_for


class MlflowServer:
    """A real `mlflow server` on loopback, started and stopped as a whole process group (it
    runs uvicorn and job workers as children, which must go away with it). `options` are its
    flags beyond address and store (default: artifacts in a local folder); `env` adds to its
    environment."""

    def __init__(self, tmp_path, port: int, options: Sequence[str] | None = None,
                 env: dict | None = None):
        self.tmp_path, self.port, self.process = tmp_path, port, None
        self.options = list(options if options is not None else
                            ["--default-artifact-root", str(tmp_path / "artifacts")])
        self.env = env or {}

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        try:
            return urllib.request.urlopen(f"{self.uri}/health", timeout=1).status == 200
        except OSError:
            return False

    def start(self) -> None:
        """Start it and wait until it answers; if it exits instead, fail with its log (a
        bad flag or auth config would otherwise show only as a timeout)."""
        log = self.tmp_path / "server.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                 str(self.port), "--workers", "1", "--backend-store-uri",
                 f"sqlite:///{self.tmp_path / 'server.db'}", *self.options],
                env={**os.environ, **self.env},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log.read_text()[-3000:]}")
            return self.answers()

        wait_for(up, timeout=180, what="the MLflow server to answer")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None
