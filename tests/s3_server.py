"""A real S3-protocol server on 127.0.0.1 for the tests and the benchmark: moto's server app.

moto checks ``If-None-Match: *`` and then stores the object as two steps, and its threaded
server runs requests in parallel, so two concurrent create-only PUTs of one key can both
succeed (we saw a lost Delta commit that way). AWS S3 and MinIO make that check atomic; here
one lock around each request gives the same guarantee. Everything else is moto's server app
as ``python -m moto.server`` serves it.

    python tests/s3_server.py --port 0      # prints "PORT <n>" once it listens
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCESS_KEY = "flowforge-test"
SECRET_KEY = "flowforge-test-secret"


def missing_packages() -> str | None:
    """Why the server cannot run here, or None."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        import obstore  # noqa: F401
    except ImportError as exc:
        return f"the S3 test server needs {exc.name}: pip install -e '.[dev]'"
    return None


def _serve(host: str, port: int) -> None:
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto lists its own package folder on every request to route it (~180 stat calls); the
    # answer never changes, so compute it once: the same routing, a third less time per request
    import moto.backends

    modules = list(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: iter(modules)
    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    trace = open(os.environ["S3_SERVER_TRACE"], "a") if os.environ.get("S3_SERVER_TRACE") else None  # noqa: SIM115

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:  # one request at a time: conditional PUTs become atomic, as on S3
            if trace is not None:
                trace.write(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}?{environ.get('QUERY_STRING')}\n")
                trace.flush()
            return list(moto_app(environ, start_response))

    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


class S3Server:
    """The server in a child process; ``options()`` gives the object_store keys to reach it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, timeout: float = 60.0, extra_args: tuple[str, ...] = ()) -> S3Server:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
               "AWS_DEFAULT_REGION": REGION}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--port", "0", "--host", self.host, *extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("PORT ") or self.proc.poll() is not None:
                break
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the S3 test server did not start (exit code {self.proc.returncode})")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def options(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
        return {"aws_endpoint": self.endpoint, "aws_region": REGION, "aws_access_key_id": access_key,
                "aws_secret_access_key": secret_key, "aws_allow_http": "true"}

    def client(self, service: str = "s3", access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def require_auth(self, after_requests: float = 0) -> None:
        """From now on (after ``after_requests`` more requests) every request must be signed by an IAM key."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", data=str(after_requests).encode(),
                                     method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            json.loads(resp.read())


class IgnoresConditionalWrites:
    """A proxy in front of ``server`` that drops ``If-None-Match``, as S3-compatible stores without
    conditional writes do (older Ceph RGW and MinIO): a create-only PUT silently overwrites.

    It runs in its own process: delta-rs holds the GIL in some calls, which would starve a proxy
    thread in the test process and deadlock the request it waits for.
    """

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.proxy = S3Server(server.host)

    def __enter__(self) -> IgnoresConditionalWrites:
        self.proxy.start(extra_args=("--proxy-to", str(self.server.port)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.proxy.stop()

    def options(self) -> dict[str, str]:
        return {**self.server.options(), "aws_endpoint": self.proxy.endpoint}


def _proxy(host: str, port: int, target_port: int) -> None:
    import http.client
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() != "if-none-match"}
            conn = http.client.HTTPConnection(host, target_port, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            length_header = resp.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length_header or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    httpd = ThreadingHTTPServer((host, port), Handler)
    print(f"PORT {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="moto's S3 server with atomic conditional writes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--proxy-to", type=int, help="instead, a proxy to this port that drops If-None-Match")
    args = parser.parse_args()
    if args.proxy_to:
        _proxy(args.host, args.port, args.proxy_to)
    else:
        _serve(args.host, args.port)
