r"""Benchmarks the local server: requests/s and p50/p99 latency, REST and gRPC, under load.

  python -m pipelines.serve_benchmark --export_dir=runs/ehcf/beibei/export
  python -m pipelines.serve_benchmark --export_dir=runs/ehcf/beibei/export \
      --concurrency=100 --batch_sizes=1 --requests=5000 --new_connection_concurrency=100

`pipelines.serve` is started in its own process on free loopback ports (REST and gRPC), over
a temporary base path whose version 1 links to the export's latest version, and stopped at
the end. Each request asks `serving_default` for the top-k of --batch_sizes random known
users (drawn from the export with --seed). For every protocol, number of concurrent clients
(--concurrency) and batch size, the clients (threads, each with its own keep-alive
connection or gRPC channel) send --requests measured requests after --warmup_requests
unmeasured ones. --new_connection_concurrency clients open a new TCP connection for every
REST request. The version-switch run (--switch_concurrency clients, REST, 1 user per
request) publishes version 2 (another link to the same export) after --switch_after_seconds
and keeps sending until the server has loaded, warmed up and switched to it and 2 s more
(the old version is freed then); it reports the requests sent before the switch (steady
state) and those sent from publishing version 2 to the end of those 2 s.
Latency is measured per request by the client (send to full reply); failed requests
(connection errors, non-200 replies) are counted, not hidden.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from absl import flags

from mbrec_tf import files
from pipelines import flags as common

FLAGS = flags.FLAGS
MODEL_NAME = "bench"


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """All flags of the serving benchmark."""
    flags.DEFINE_string(
        "export_dir",
        None,
        "Exported model base folder (served, and the users are drawn from it).",
        flag_values=flag_values,
    )
    flags.DEFINE_list("batch_sizes", ["1", "64"], "Users per request.", flag_values=flag_values)
    flags.DEFINE_list(
        "concurrency", ["1", "20", "100"], "Concurrent clients to try.", flag_values=flag_values
    )
    flags.DEFINE_list("protocols", ["rest", "grpc"], "rest and/or grpc.", flag_values=flag_values)
    flags.DEFINE_integer(
        "requests",
        1000,
        "Measured requests per configuration (all clients together).",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "warmup_requests",
        20,
        "Unmeasured requests first, per configuration.",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "new_connection_concurrency",
        ["100"],
        "Clients that open a new connection per REST request (1 user each); empty: none.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "switch_concurrency",
        20,
        "Clients during the version-switch run (0: no switch run).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "switch_after_seconds",
        5.0,
        "Steady-state seconds before version 2 is published in the switch run.",
        lower_bound=0.5,
        flag_values=flag_values,
    )
    flags.DEFINE_integer("seed", 0, "Seed for drawing users.", flag_values=flag_values)
    flags.DEFINE_string(
        "output_json", None, "Also write the results here.", flag_values=flag_values
    )
    flags.mark_flag_as_required("export_dir", flag_values=flag_values)


# --- the server under test -------------------------------------------------------------------
def known_users(version_dir: str) -> list[Any]:
    """Every raw user id of an export version (JSON-ready: text or int)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    ids = loaded.user_ids.numpy()
    return [i.decode("utf-8") for i in ids] if ids.dtype == object else ids.tolist()


@dataclasses.dataclass
class RunningServer:
    process: subprocess.Popen
    url: str  # http://host:port/v1/models/<name>
    grpc_target: str
    base_path: str

    @property
    def address(self) -> tuple[str, int]:
        host_port = self.url.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        return host, int(port)

    def statuses(self) -> list[tuple[str, str]]:
        with urllib.request.urlopen(self.url, timeout=10) as reply:
            body = json.loads(reply.read())
        return [(s["version"], s["state"]) for s in body["model_version_status"]]

    def stop(self) -> None:
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


# --- clients ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Record:
    start: float  # time.perf_counter() when the request was sent
    seconds: float
    ok: bool


def rest_client(
    server: RunningServer, keep_alive: bool
) -> Callable[[Sequence[bytes], Callable[[], bool]], tuple[list[Record], list[str]]]:
    """A function sending REST bodies in order on one connection (or one per request)."""
    host, port = server.address
    path = server.url.split(f"{port}", 1)[1] + ":predict"

    def connect() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.connect()
        # http.client sends headers and body separately: without this, Nagle's algorithm
        # holds the body until the server's delayed ACK.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def send(bodies: Sequence[bytes], stop: Callable[[], bool]):
        records, errors = [], []
        connection = None
        for body in bodies:
            if stop():
                break
            start = time.perf_counter()
            try:
                if connection is None:
                    connection = connect()
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                reply = connection.getresponse()
                payload = reply.read()
                ok = reply.status == 200
                if not ok:
                    errors.append(f"HTTP {reply.status}: {payload[:200]!r}")
            except (OSError, http.client.HTTPException) as error:
                ok = False
                errors.append(f"{type(error).__name__}: {error}")
                connection = None
            records.append(Record(start, time.perf_counter() - start, ok))
            if not keep_alive and connection is not None:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()
        return records, errors

    return send


def grpc_client(server: RunningServer):
    """A function sending PredictRequests in order on one gRPC channel."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    def send(requests: Sequence[Any], stop: Callable[[], bool]):
        records, errors = [], []
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for request in requests:
                if stop():
                    break
                start = time.perf_counter()
                try:
                    stub.Predict(request, timeout=60)
                    ok = True
                except grpc.RpcError as error:
                    ok = False
                    errors.append(f"{error.code()}: {error.details()}")
                records.append(Record(start, time.perf_counter() - start, ok))
        return records, errors

    return send


def rest_bodies(users: Sequence[Any], batch_size: int, count: int, seed: int) -> list[bytes]:
    """`count` serving_default bodies of `batch_size` distinct random users each."""
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        chosen = rng.choice(len(users), size=min(batch_size, len(users)), replace=False)
        bodies.append(json.dumps({"instances": [users[i] for i in chosen]}).encode())
    return bodies


def grpc_requests(users: Sequence[Any], batch_size: int, count: int, seed: int) -> list[Any]:
    """The same draws as `rest_bodies`, as TF Serving PredictRequests."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    rng = np.random.default_rng(seed)
    as_text = isinstance(users[0], str)
    requests = []
    for _ in range(count):
        chosen = rng.choice(len(users), size=min(batch_size, len(users)), replace=False)
        values = [users[i] for i in chosen]
        array = np.array([v.encode() for v in values], dtype=object) if as_text else values
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs["user"].CopyFrom(tf.make_tensor_proto(np.asarray(array)))
        requests.append(request)
    return requests


def run_clients(send, payloads: Sequence[Any], concurrency: int, stop=lambda: False):
    """Sends the payloads from `concurrency` threads; (records, errors, wall seconds)."""
    shards = [payloads[i::concurrency] for i in range(concurrency)]
    results: list[tuple[list[Record], list[str]]] = []
    lock = threading.Lock()

    def worker(shard):
        outcome = send(shard, stop)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(s,)) for s in shards if len(s)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    records = [r for rs, _ in results for r in rs]
    errors = [e for _, es in results for e in es]
    return records, errors, wall


def summarize(records: Sequence[Record], wall: float) -> dict[str, float]:
    """Requests, failures, requests per second and latency percentiles in milliseconds."""
    millis = np.asarray([r.seconds for r in records]) * 1000.0
    if not len(millis):
        millis = np.asarray([float("nan")])
    return {
        "requests": len(records),
        "failed": sum(not r.ok for r in records),
        "requests_per_second": len(records) / wall if wall > 0 else float("nan"),
        "p50_ms": float(np.percentile(millis, 50)),
        "p99_ms": float(np.percentile(millis, 99)),
        "mean_ms": float(np.mean(millis)),
    }


# --- scenarios -------------------------------------------------------------------------------
def load_run(server, users, protocol, concurrency, batch_size, requests, warmup, seed, keep_alive):
    if protocol == "rest":
        send = rest_client(server, keep_alive)
        make = rest_bodies
    else:
        send = grpc_client(server)
        make = grpc_requests
    if warmup:
        run_clients(send, make(users, batch_size, warmup, seed + 1), concurrency)
    records, errors, wall = run_clients(send, make(users, batch_size, requests, seed), concurrency)
    summary = summarize(records, wall)
    summary["first_error"] = errors[0] if errors else ""
    return summary


def switch_run(server, users, target, concurrency, after_seconds, seed) -> dict[str, Any]:
    """Steady load, then version 2 is published; stats before and during the switch."""
    stop = threading.Event()
    send = rest_client(server, keep_alive=True)
    bodies = rest_bodies(users, 1, 100_000, seed)
    outcome: dict[str, Any] = {}

    def load():
        outcome["records"], outcome["errors"], outcome["wall"] = run_clients(
            send, bodies, concurrency, stop.is_set
        )

    thread = threading.Thread(target=load)
    begin = time.perf_counter()
    thread.start()
    time.sleep(after_seconds)
    published = time.perf_counter()
    publish_version(server.base_path, 2, target)
    while server.statuses() != [("2", "AVAILABLE")]:
        if time.perf_counter() - published > 300:
            stop.set()
            thread.join()
            raise RuntimeError(f"version 2 was not served: {server.statuses()}")
        time.sleep(0.02)
    switched = time.perf_counter()
    # The old version is freed about a second after the switch: that belongs to it too.
    settled = switched + 2.0
    time.sleep(2.5)
    stop.set()
    thread.join()
    records = outcome["records"]
    steady = [r for r in records if begin + 1.0 <= r.start < published]
    during = [r for r in records if published <= r.start <= settled]
    steady_summary = summarize(steady, published - begin - 1.0)
    during_summary = summarize(during, settled - published)
    return {
        "clients": concurrency,
        "switch_seconds": switched - published,
        "steady": steady_summary,
        "during_switch": during_summary,
        "failed": sum(not r.ok for r in records),
        "p99_ratio": during_summary["p99_ms"] / steady_summary["p99_ms"],
        "first_error": outcome["errors"][0] if outcome["errors"] else "",
    }


def _row(name, protocol, clients, users, connection, summary) -> str:
    return (
        f"{name:<8} {protocol:<5} {clients:>7} {users:>5} {connection:<10} "
        f"{summary['requests']:>8} {summary['failed']:>6} {summary['requests_per_second']:>9.1f} "
        f"{summary['p50_ms']:>8.2f} {summary['p99_ms']:>8.2f}"
    )


def main(argv: list[str]) -> None:
    del argv
    from mbrec_tf.serving import export as export_lib

    try:
        version_dir = os.path.realpath(export_lib.resolve_version_dir(FLAGS.export_dir))
        batch_sizes = [int(b) for b in FLAGS.batch_sizes]
        concurrencies = [int(c) for c in FLAGS.concurrency]
        new_connection = [int(c) for c in FLAGS.new_connection_concurrency]
    except (FileNotFoundError, ValueError) as error:
        common.usage_error(str(error))
    unknown = sorted(set(FLAGS.protocols) - {"rest", "grpc"})
    if unknown:
        common.usage_error(f"--protocols: unknown {unknown}; use rest and/or grpc")
    users = known_users(version_dir)
    base_path = tempfile.mkdtemp(prefix="serve_benchmark_")
    os.symlink(version_dir, os.path.join(base_path, "1"))
    server = start_server(base_path)
    rows, record = [], {"runs": [], "switch": None}
    try:
        for protocol in FLAGS.protocols:
            for clients in concurrencies:
                for batch_size in batch_sizes:
                    summary = load_run(
                        server,
                        users,
                        protocol,
                        clients,
                        batch_size,
                        FLAGS.requests,
                        FLAGS.warmup_requests,
                        FLAGS.seed,
                        keep_alive=True,
                    )
                    connection = "keep-alive" if protocol == "rest" else "channel"
                    rows.append(_row("load", protocol, clients, batch_size, connection, summary))
                    print(rows[-1], flush=True)
                    record["runs"].append(
                        {
                            "protocol": protocol,
                            "clients": clients,
                            "users": batch_size,
                            "connection": connection,
                            **summary,
                        }
                    )
        for clients in new_connection:
            summary = load_run(
                server,
                users,
                "rest",
                clients,
                1,
                FLAGS.requests,
                FLAGS.warmup_requests,
                FLAGS.seed,
                keep_alive=False,
            )
            rows.append(_row("load", "rest", clients, 1, "new", summary))
            print(rows[-1], flush=True)
            record["runs"].append(
                {"protocol": "rest", "clients": clients, "users": 1, "connection": "new", **summary}
            )
        if FLAGS.switch_concurrency:
            switch = switch_run(
                server,
                users,
                version_dir,
                FLAGS.switch_concurrency,
                FLAGS.switch_after_seconds,
                FLAGS.seed,
            )
            record["switch"] = switch
            for name in ("steady", "during_switch"):
                rows.append(
                    _row(name[:8], "rest", switch["clients"], 1, "keep-alive", switch[name])
                )
            print(rows[-2] + "\n" + rows[-1], flush=True)
    finally:
        server.stop()
        shutil.rmtree(base_path, ignore_errors=True)
    print(f"\n{version_dir}  ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)")
    print(
        f"{'run':<8} {'proto':<5} {'clients':>7} {'users':>5} {'connection':<10} "
        f"{'requests':>8} {'failed':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    )
    print("\n".join(rows))
    if record["switch"] is not None:
        switch = record["switch"]
        print(
            f"version switch: {switch['switch_seconds']:.2f} s from publishing version 2 to "
            f"serving it; p99 during / steady = {switch['p99_ratio']:.2f}; failed requests "
            f"in the whole run: {switch['failed']}"
        )
    errors = [r["first_error"] for r in record["runs"] if r["first_error"]]
    if errors:
        print(f"first error: {errors[0]}")
    if FLAGS.output_json:
        record["export"] = version_dir
        files.write_json(FLAGS.output_json, record, sort_keys=False)


if __name__ == "__main__":
    define_flags()
    common.run(main)
