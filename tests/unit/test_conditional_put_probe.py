"""The conditional-put probe against small real HTTP servers on loopback: a store that answers
If-None-Match with 501 is reported as not enforcing it, and an unreachable one is an error,
however long the failed attempt took (obstore puts the elapsed time in its message)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("obstore")

from flowforge.errors import StorageError
from flowforge.storage.objects import Bucket


class _NoConditionalPut(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(501 if self.headers.get("If-None-Match") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoConditionalPut)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _options(endpoint: str) -> dict[str, str]:
    return {"aws_endpoint": endpoint, "aws_allow_http": "true", "aws_region": "us-east-1",
            "aws_access_key_id": "probe", "aws_secret_access_key": "probe-secret", "max_retries": "0"}


def test_a_store_answering_501_does_not_enforce_conditional_put(endpoint: str) -> None:
    assert Bucket("lake", _options(endpoint)).enforces_conditional_put("bronze/t") is False


def test_an_unreachable_store_is_an_error_not_a_missing_feature() -> None:
    for _ in range(10):  # elapsed times vary; none may be read as a 501 status
        with pytest.raises(StorageError, match="cannot reach"):
            Bucket("lake", _options("http://127.0.0.1:9")).enforces_conditional_put("bronze/t")
