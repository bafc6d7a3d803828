"""The REST server under hostile input, slow or vanishing clients and many concurrent clients.

Raw sockets on a loopback port, so that requests no HTTP library would send can be sent.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time

import pytest

from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving.server import ModelServer

NAME = "recs"
PREDICT = f"/v1/models/{NAME}:predict"
GOOD = json.dumps({"instances": ["u0"]}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory, string_data):
    base = str(tmp_path_factory.mktemp("hardening"))
    model = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    export_lib.export_model(model, string_data, base, default_k=3)
    with ModelServer(
        base, NAME, port=0, poll_seconds=0.2, max_ids=50, read_timeout=1.0, idle_timeout=2.0
    ) as running:
        yield running


def exchange(server, data: bytes, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
    """Sends raw bytes, reads until the server closes; (status, head, body) of the reply."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        return exchange_on(sock)


def exchange_on(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """Reads one reply (or until the server closes); (status, head, body)."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
        if b"\r\n\r\n" in received:
            head, _, body = received.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                break
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, body


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def good_request_works(server) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request("POST", PREDICT, GOOD)
    assert connection.getresponse().status == 200
    connection.close()


BIG_INTEGER = b'{"instances": [' + b"7" * 5000 + b"]}"
MILLIONS_OF_LISTS = b'{"inputs": [' + b",".join([b"[]"] * 5_000_000) + b"]}"  # ~15 MB


@pytest.mark.parametrize(
    "data,status,message",
    [
        (b"GET /v1/models/recs/versions/\xb2 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "version"),
        (b"GET /v1/models/recs/versions/" + b"9" * 5000 + b" HTTP/1.1\r\n\r\n", 400, "version"),
        (post("/v1/models/recs/versions/\xb2:predict", GOOD), 400, "version"),
        (post(PREDICT, BIG_INTEGER), 400, "malformed JSON"),
        (post(PREDICT, b'{"instances": ["\\ud800"]}'), 400, "invalid unicode"),
        (
            f"POST {PREDICT} HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n".encode("latin-1"),
            400,
            "integer",
        ),
        (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: ١٢\r\n\r\n".encode(), 400, "integer"),
        (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: -5\r\n\r\n".encode(), 400, "integer"),
        (post(PREDICT, GOOD, b"Content-Length: 3\r\n"), 400, "conflicting"),
        (
            f"POST {PREDICT} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(),
            411,
            "",
        ),
        (f"POST {PREDICT} HTTP/1.1\r\n\r\n".encode(), 411, "Content-Length"),
        (f"POST {PREDICT} HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n".encode(), 413, ""),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, ""),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431, ""),
        (b"GARBAGE\r\n\r\n", 400, "request line"),
        (b"GET / HTTP/9.9\r\n\r\n", 400, ""),
        (b"GET / SPDY/1\r\n\r\n", 400, ""),
        (b"BREW /v1/models/recs HTTP/1.1\r\n\r\n", 405, "BREW"),
        (b"DELETE /v1/models/recs HTTP/1.1\r\n\r\n", 405, ""),
        (post(PREDICT, b"\xff\xfe"), 400, "malformed JSON"),
        (post(PREDICT, MILLIONS_OF_LISTS), 400, "more than a request"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_one_line_json_error(server, data, status, message):
    start = time.perf_counter()
    got, head, body = exchange(server, data)
    assert got == status, (head, body)
    assert b"application/json" in head
    text = body.decode()
    assert "\n" not in text
    assert message in json.loads(text)["error"]
    assert time.perf_counter() - start < 2.0  # cheap checks first: no seconds of parsing
    good_request_works(server)


def test_a_huge_body_does_not_stall_other_clients(server):
    """Good requests keep their latency while a 15 MB body of empty lists is refused."""
    latencies = []
    stop = threading.Event()

    def good_client():
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        while not stop.is_set():
            start = time.perf_counter()
            connection.request("POST", PREDICT, GOOD)
            assert connection.getresponse().read()
            latencies.append(time.perf_counter() - start)
        connection.close()

    thread = threading.Thread(target=good_client)
    thread.start()
    try:
        for _ in range(3):
            assert exchange(server, post(PREDICT, MILLIONS_OF_LISTS))[0] == 400
    finally:
        stop.set()
        thread.join()
    assert latencies and max(latencies) < 1.0


def test_half_sent_bodies_time_out_and_vanishing_clients_leave_no_traceback(server, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    # A body that never completes: 408 after the read timeout (1 s here), then closed.
    start = time.perf_counter()
    status, head, body = exchange(server, post(PREDICT, GOOD)[:-5])
    assert status == 408 and b"Connection: close" in head
    assert 0.9 < time.perf_counter() - start < 5
    # Many clients that send half a body, or half the headers, and hang up.
    sockets = []
    for index in range(60):
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(post(PREDICT, GOOD)[: -5 if index % 2 else 30])
        sockets.append(sock)
    time.sleep(0.2)
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # linger 0: a reset, the rudest close
    # A client that reads no reply at all and resets.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(post(PREDICT, GOOD) * 3)
    time.sleep(0.5)
    good_request_works(server)
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in capfd.readouterr().err


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(server):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request("POST", PREDICT, GOOD)
    assert connection.getresponse().read()
    start = time.perf_counter()
    assert connection.sock.recv(1) == b""  # closed by the server (idle 2 s), no reply
    assert 1.5 < time.perf_counter() - start < 6
    connection.close()


def test_a_new_connection_that_sends_nothing_is_closed_after_the_idle_timeout(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        start = time.perf_counter()
        assert sock.recv(1) == b""  # closed by the server (idle 2 s), no reply
        assert 1.5 < time.perf_counter() - start < 6


def test_a_request_line_trickled_after_an_idle_wait_gets_the_read_timeout(server):
    """The read timeout starts at the request's first byte, not when the connection opened."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        time.sleep(1.2)  # longer than the read timeout, shorter than the idle timeout
        sock.sendall(b"PO")
        start = time.perf_counter()
        status, _, body = exchange_on(sock)
        assert status == 408 and "head" in json.loads(body)["error"]
        assert 0.7 < time.perf_counter() - start < 3


def trickle(host: str, port: int, head: bytes, at_once: int, stop: threading.Event) -> dict:
    """Sends `head[:at_once]`, then one byte every 0.1 s until the server hangs up (at most
    for 6 s or until `stop`); returns when it was cut off and what the server replied."""
    result = {"cut_after": None, "reply": b""}
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.settimeout(0.1)
        try:
            sock.sendall(head[:at_once])
            for position in range(at_once, len(head)):
                if stop.is_set() or time.monotonic() - start > 6:
                    return result
                try:
                    received = sock.recv(65536)
                except TimeoutError:
                    received = None  # nothing from the server yet: keep trickling
                if received is not None:
                    result["reply"] = received
                    break
                sock.sendall(head[position : position + 1])
        except OSError:
            pass
        result["cut_after"] = time.monotonic() - start
    return result


def test_clients_trickling_bytes_cannot_hold_the_connection_slots(tmp_path, string_data):
    """Slowloris: 4 clients take all 4 slots and send a byte every 0.1 s, in the request line
    or the headers; each is cut off once the read timeout (1 s) for its whole head is spent,
    and a good request is served while they are still trickling."""
    model = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    export_lib.export_model(model, string_data, str(tmp_path), default_k=3)
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"X-Padding-{i}: {'a' * 20}\r\n" for i in range(10))
        + "\r\n"
    ).encode()
    stop = threading.Event()
    results: list[dict] = []
    with ModelServer(
        str(tmp_path), NAME, port=0, max_connections=4, read_timeout=1.0, idle_timeout=30.0
    ) as small:
        starts = [0, 5, 30, 40]  # inside the request line, then inside the headers
        threads = [
            threading.Thread(
                target=lambda n=n: results.append(trickle(small.host, small.port, head, n, stop))
            )
            for n in starts
        ]
        for thread in threads:
            thread.start()
        try:
            # Every slot is soon held by a trickling client (polled: a loaded machine may
            # start the threads late; each head is cut off 1 s after its first byte).
            time.sleep(0.3)
            statuses = [exchange(small, post(PREDICT, GOOD))[0]]
            while statuses[-1] != 503 and len(statuses) < 6:
                time.sleep(0.1)
                statuses.append(exchange(small, post(PREDICT, GOOD))[0])
            assert statuses[-1] == 503, statuses
            served_at = None
            start = time.monotonic()
            while time.monotonic() - start < 4 and served_at is None:
                if exchange(small, post(PREDICT, GOOD))[0] == 200:
                    served_at = time.monotonic() - start
                else:
                    time.sleep(0.1)
            assert served_at is not None, "trickling clients kept every slot"
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert len(results) == len(starts)
    for result in results:
        assert result["cut_after"] is not None and result["cut_after"] < 3, result
        assert result["reply"].startswith(b"HTTP/1.1 408"), result


def _clients(server, clients: int, requests: int, keep_alive: bool) -> list[str]:
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client():
        connection = None
        barrier.wait()  # every client connects at the same moment
        for _ in range(requests):
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
                connection.request("POST", PREDICT, GOOD)
                reply = connection.getresponse()
                reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"status {reply.status}")
            except Exception as error:  # noqa: BLE001 - counted, not raised
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                connection = None
            if not keep_alive and connection is not None:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_100_concurrent_keep_alive_clients_get_no_errors(server):
    assert _clients(server, clients=100, requests=10, keep_alive=True) == []


def test_100_clients_with_a_new_connection_per_request_get_no_errors(server):
    assert _clients(server, clients=100, requests=5, keep_alive=False) == []


def test_over_the_connection_limit_is_a_503_not_a_hang(tmp_path, string_data):
    model = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    export_lib.export_model(model, string_data, str(tmp_path), default_k=3)
    with ModelServer(str(tmp_path), NAME, port=0, max_connections=2) as small:
        held = [socket.create_connection((small.host, small.port)) for _ in range(2)]
        time.sleep(0.2)
        status, _, body = exchange(small, post(PREDICT, GOOD))
        assert status == 503 and "busy" in json.loads(body)["error"]
        for sock in held:
            sock.close()
        time.sleep(0.2)
        good_request_works(small)
