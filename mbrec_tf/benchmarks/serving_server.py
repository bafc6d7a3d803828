"""The server under test of the serving benchmark: `pipelines.serve` in its own process on
free loopback ports, its version statuses, and versions published as TF Serving expects."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

#: The model name the benchmark serves its export under.
MODEL_NAME = "bench"


def known_users(version_dir: str) -> list[Any]:
    """Every raw user id of an export version (JSON-ready: text or int)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    ids = loaded.user_ids.numpy()
    return [i.decode("utf-8") for i in ids] if ids.dtype == object else ids.tolist()


@dataclasses.dataclass
class RunningServer:
    """A started `pipelines.serve` process and where it answers."""

    process: subprocess.Popen
    url: str  # http://host:port/v1/models/<name>
    grpc_target: str
    base_path: str

    @property
    def address(self) -> tuple[str, int]:
        """Host and port of the REST endpoint."""
        host_port = self.url.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        return host, int(port)

    def statuses(self) -> list[tuple[str, str]]:
        """(version, state) of every version the server reports."""
        with urllib.request.urlopen(self.url, timeout=10) as reply:
            body = json.loads(reply.read())
        return [(s["version"], s["state"]) for s in body["model_version_status"]]

    def stop(self) -> None:
        """Terminates the server and waits for it."""
        self.process.terminate()
        self.process.wait(timeout=30)


def start_server(base_path: str, timeout: float = 300.0) -> RunningServer:
    """`pipelines.serve` with REST and gRPC on free loopback ports, once a version serves."""
    command = [
        sys.executable,
        "-m",
        "pipelines.serve",
        f"--model_base_path={base_path}",
        f"--model_name={MODEL_NAME}",
        "--port=0",
        "--grpc_port=0",
        "--file_system_poll_wait_seconds=0.2",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    line = process.stdout.readline().strip()
    url = line.rsplit(" at ", 1)[-1]
    if not url.startswith("http://") or "gRPC on " not in line:
        process.terminate()
        raise RuntimeError(f"pipelines.serve did not start: {line!r}")
    grpc_target = line.split("gRPC on ", 1)[1].split()[0]
    server = RunningServer(process, url, grpc_target, base_path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ("1", "AVAILABLE") in server.statuses():
                return server
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.terminate()
            raise RuntimeError(f"no model version became available at {url}")
        time.sleep(0.2)


def publish_version(base_path: str, version: int, target: str) -> None:
    """A new version folder (a link to `target`), appearing at once as TF Serving expects."""
    hidden = os.path.join(base_path, f".tmp-{version}")
    os.symlink(target, hidden)
    os.rename(hidden, os.path.join(base_path, str(version)))
