"""An embedded AWS: moto in server mode on a free local port.

Server mode (not ``mock_aws``) because the generator runs in a subprocess, as it does on
Batch, and must reach the same S3 and EventBridge over HTTP. One server per process: the
Lambda modules create their boto3 clients once, against whatever ``AWS_ENDPOINT_URL`` says
at that time, so moving to another port would strand them; :meth:`LocalAws.reset` wipes the
state instead.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account

#: Environment every local process (this one, the handlers, the generator) runs with.
FAKE_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

_lock = threading.Lock()
_instance: LocalAws | None = None


class LocalAws:
    """A running moto server and the environment that points boto3 at it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        from moto.server import ThreadedMotoServer

        # moto logs every request through werkzeug: noise on the progress display.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
        self._server.start()
        bound_host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{bound_host}:{port}"
        self.configure()

    @property
    def env(self) -> dict[str, str]:
        """Variables that send boto3 (in any process) to this server."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def apply_env(self, environ: dict[str, str] | os._Environ[str] | None = None) -> None:
        """Point this process's boto3 at the server (boto3 reads these on client creation)."""
        target = os.environ if environ is None else environ
        target.update(self.env)

    def _post(self, path: str, body: Mapping[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}{path}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def configure(self) -> None:
        # Without Docker, moto's "simple" Batch backend records jobs and marks them SUCCEEDED
        # without running anything; meshdrop.local.runner does the running.
        self._post("/moto-api/config", {"batch": {"use_docker": False}})

    def reset(self) -> None:
        """Forget every resource and object (configuration is kept, and re-applied)."""
        self._post("/moto-api/reset")
        self.configure()

    def stop(self) -> None:
        self._server.stop()


def local_aws() -> LocalAws:
    """The process's embedded AWS, started on first use; the environment points at it."""
    global _instance
    with _lock:
        if _instance is None:
            _instance = LocalAws()
        _instance.apply_env()
        return _instance
