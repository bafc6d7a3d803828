"""Load on the serving benchmark's server: REST and gRPC clients, concurrent load runs, the
version-switch run, and the table of requests/s and latency percentiles they print."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import platform
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mbrec_tf.benchmarks.serving_server import (
    MODEL_NAME,
    RunningServer,
    known_users,
    publish_version,
    start_server,
)


@dataclasses.dataclass
class Record:
    """One request as the client saw it."""

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
    """One configuration: warm-up requests, then the measured ones; their summary."""
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
    """One line of the results table."""
    return (
        f"{name:<8} {protocol:<5} {clients:>7} {users:>5} {connection:<10} "
        f"{summary['requests']:>8} {summary['failed']:>6} {summary['requests_per_second']:>9.1f} "
        f"{summary['p50_ms']:>8.2f} {summary['p99_ms']:>8.2f}"
    )


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    """Every configuration the serving benchmark measures, and how many requests each."""

    protocols: Sequence[str]
    concurrencies: Sequence[int]
    batch_sizes: Sequence[int]
    requests: int
    warmup_requests: int
    new_connection: Sequence[int]
    switch_concurrency: int
    switch_after_seconds: float
    seed: int


def measure(plan: LoadPlan, version_dir: str) -> tuple[list[str], dict[str, Any]]:
    """Serves `version_dir` and runs every load of `plan`, printing each row as it ends;
    returns the rows and the record of every run (and of the switch run)."""
    users = known_users(version_dir)
    base_path = tempfile.mkdtemp(prefix="serve_benchmark_")
    os.symlink(version_dir, os.path.join(base_path, "1"))
    server = start_server(base_path)
    rows, record = [], {"runs": [], "switch": None}
    try:
        for protocol in plan.protocols:
            for clients in plan.concurrencies:
                for batch_size in plan.batch_sizes:
                    summary = load_run(
                        server,
                        users,
                        protocol,
                        clients,
                        batch_size,
                        plan.requests,
                        plan.warmup_requests,
                        plan.seed,
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
        for clients in plan.new_connection:
            summary = load_run(
                server,
                users,
                "rest",
                clients,
                1,
                plan.requests,
                plan.warmup_requests,
                plan.seed,
                keep_alive=False,
            )
            rows.append(_row("load", "rest", clients, 1, "new", summary))
            print(rows[-1], flush=True)
            record["runs"].append(
                {"protocol": "rest", "clients": clients, "users": 1, "connection": "new", **summary}
            )
        if plan.switch_concurrency:
            switch = switch_run(
                server,
                users,
                version_dir,
                plan.switch_concurrency,
                plan.switch_after_seconds,
                plan.seed,
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
    return rows, record


def report(version_dir: str, rows: list[str], record: dict[str, Any]) -> str:
    """The closing table: the machine, every row, the version switch and the first error."""
    lines = [
        f"\n{version_dir}  ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)",
        f"{'run':<8} {'proto':<5} {'clients':>7} {'users':>5} {'connection':<10} "
        f"{'requests':>8} {'failed':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}",
        "\n".join(rows),
    ]
    if record["switch"] is not None:
        switch = record["switch"]
        lines.append(
            f"version switch: {switch['switch_seconds']:.2f} s from publishing version 2 to "
            f"serving it; p99 during / steady = {switch['p99_ratio']:.2f}; failed requests "
            f"in the whole run: {switch['failed']}"
        )
    errors = [r["first_error"] for r in record["runs"] if r["first_error"]]
    if errors:
        lines.append(f"first error: {errors[0]}")
    return "\n".join(lines)
