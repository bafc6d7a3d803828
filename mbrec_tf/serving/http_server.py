"""The HTTP layer of the local REST server: hardened `http.server`, no API logic.

One thread per connection (HTTP/1.1 keep-alive; the model call releases the GIL, so threads
overlap on the TensorFlow side) up to `max_connections` (more get a 503 and are closed), a
listen backlog of `listen_backlog`, an idle timeout before each request and one read
timeout for the whole request, head and body, from its first byte (so that clients
trickling bytes cannot hold connections), JSON for every error the HTTP layer itself raises
(400 for a malformed request line or headers or Content-Length, 408 for a request not
received in time, 411, 413, 414 and 431 as their names say), and a client that disconnects
or times out is a debug log line, never a traceback. What a request means is the
`rest_api.RestApi`'s business.
"""

from __future__ import annotations

import http
import io
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from absl import logging

from mbrec_tf.serving.rest_api import RestApi

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_LISTEN_BACKLOG = 1024
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 60.0
_MAX_REQUEST_LINE = 65536


class RequestClock(io.RawIOBase):
    """The connection's reads, each given only the time left to the request being read.

    Before a request a read may wait `idle_timeout` for its first byte; from that byte on,
    the whole head and body must arrive within `read_timeout`, however the client spreads
    its bytes: a client trickling one byte at a time cannot hold a connection longer.
    """

    def __init__(self, connection: socket.socket, idle_timeout: float, read_timeout: float):
        super().__init__()
        self.connection = connection
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.deadline: float | None = None  # None: waiting for a request's first byte
        self.started = False  # a byte of the current request has been received

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        """Between requests: wait up to the idle timeout for the next one to begin."""
        self.deadline, self.started = None, False

    def request_started(self) -> None:
        """The request line is in: the head and body must follow within the deadline."""
        self.started = True
        if self.deadline is None:
            self.deadline = time.monotonic() + self.read_timeout

    def readinto(self, buffer) -> int:
        if self.deadline is None:
            self.connection.settimeout(self.idle_timeout)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request deadline passed")
            self.connection.settimeout(left)
        count = self.connection.recv_into(buffer)
        if count:
            self.request_started()
        return count


class RestHandler(BaseHTTPRequestHandler):
    """Reads one request at a time, hands it to the RestApi, writes a JSON reply."""

    protocol_version = "HTTP/1.1"  # keep-alive: every reply has a Content-Length
    server_version = "mbrec_tf-serving"
    # Headers and body go out in separate writes; with Nagle's algorithm the body would
    # wait for the client's delayed ACK (~40 ms per request on keep-alive connections).
    disable_nagle_algorithm = True
    server: RestHttpServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: replaced by one that keeps time
        self.clock = RequestClock(
            self.connection, self.server.idle_timeout, self.server.read_timeout
        )
        self.rfile = io.BufferedReader(self.clock)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError as error:  # the client went away or stalled: nothing to answer
            logging.debug("connection from %s ended: %s", self.client_address[0], error)
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self) -> None:
        server = self.server
        self.request_version = "HTTP/1.1"
        self.requestline, self.command = "", ""
        try:
            self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.clock.request_started()
            if len(self.raw_requestline) > _MAX_REQUEST_LINE:
                self.send_error(http.HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
                return
            if len(self.raw_requestline.split()) != 3:
                self.send_error(http.HTTPStatus.BAD_REQUEST, "malformed request line")
                return
            if not self.parse_request():  # replies itself (through send_error) when it fails
                return
        except TimeoutError:
            self.close_connection = True
            if self.clock.started:  # a request began but its head did not arrive in time
                self._reply(
                    http.HTTPStatus.REQUEST_TIMEOUT,
                    {"error": f"request head not received within {server.read_timeout:g} s"},
                )
            return  # an idle connection: closed quietly, as between keep-alive requests
        if self.command == "GET":
            self._get()
        elif self.command == "POST":
            self._post()
        else:
            self.close_connection = True
            self._reply(
                http.HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": f"method {self.command[:20]!r} is not supported; use GET or POST"},
            )
        self.wfile.flush()
        self.clock.next_request()

    def _get(self) -> None:
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # a body we do not read
        self._reply(*self.server.api.handle("GET", self.path, b""))

    def _post(self) -> None:
        length = self._content_length()
        if length is None:
            return
        try:
            body = self._read_body(length)
        except TimeoutError:
            self.close_connection = True
            self._reply(
                http.HTTPStatus.REQUEST_TIMEOUT,
                {"error": f"request body not received within {self.server.read_timeout:g} s"},
            )
            return
        self._reply(*self.server.api.handle("POST", self.path, body))

    def _content_length(self) -> int | None:
        """The body's length, or None after replying why the request is refused."""
        error = None
        status = http.HTTPStatus.BAD_REQUEST
        values = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            status = http.HTTPStatus.LENGTH_REQUIRED
            error = "Transfer-Encoding bodies are not supported; send a Content-Length"
        elif not values:
            status = http.HTTPStatus.LENGTH_REQUIRED
            error = "Content-Length required"
        elif len(set(values)) > 1:
            error = "conflicting Content-Length headers"
        else:
            text = values[0].strip()
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                error = f"Content-Length must be a non-negative integer, got {text[:40]!r}"
            elif int(text) > self.server.max_body_bytes:
                status = http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                error = f"request body over {self.server.max_body_bytes} bytes"
        if error is None:
            return int(values[0])
        self.close_connection = True  # the body is not read: the connection cannot go on
        self._reply(status, {"error": error})
        return None

    def _read_body(self, length: int) -> bytes:
        """`length` bytes, all within the request's deadline (TimeoutError otherwise)."""
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionResetError("client closed the connection mid-body")
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """http.server's own errors (bad request line or headers) as one-line JSON."""
        del explain
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # so that the reply has a status line
        self.close_connection = True
        text = message or http.HTTPStatus(code).phrase
        if code == http.HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            code = http.HTTPStatus.BAD_REQUEST  # a request this server cannot parse: 4xx
        self._reply(code, {"error": " ".join(str(text).split())[:300]})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.connection.settimeout(self.server.read_timeout)  # a whole reply, not each write
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        logging.debug("%s " + format, self.client_address[0], *args)


class RestHttpServer(ThreadingHTTPServer):
    """Thread per connection, up to `max_connections`; a deep listen backlog."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        api: RestApi,
        *,
        max_body_bytes: int,
        listen_backlog: int,
        max_connections: int,
        read_timeout: float,
        idle_timeout: float,
    ):
        self.request_queue_size = listen_backlog  # listen() is called in __init__
        super().__init__(address, RestHandler)
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            logging.warning(
                "over %d connections: refusing %s", self.max_connections, client_address
            )
            body = json.dumps({"error": f"server busy: over {self.max_connections} connections"})
            reply = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
            )
            try:
                request.settimeout(1.0)
                request.sendall(reply.encode("ascii"))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logging.debug("connection from %s ended: %s", client_address, error)
        else:
            logging.exception("error while serving %s", client_address)
