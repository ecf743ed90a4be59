"""Shared plumbing of the parity servers (`<connector>/server.py`).

Each server imitates one API as its public documentation shows it, answers
on 127.0.0.1 (port 0 unless `--port`) and prints `PORT <n>` once it listens.
The test drives it through two control endpoints, which no real API has:

* `GET /__control/phase?n=N[&at=EPOCH]`: switch the data set (phase 2 adds
  and updates records, for the incremental second run, stamped `at`, a time
  after both tools' first runs); also clears the request log.
* `GET /__control/requests`: the requests answered since the last call, as
  JSON (`method`, `path`, `query`, `auth`, `agent`), and clears the log.

A route is `fn(req) -> (status, body, headers)`, `req` a `Request`. Standard
library only.
"""
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Request:
    def __init__(self, handler, body):
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path
        self.raw_query = parts.query
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        self.body = body
        host = handler.headers.get("Host") or "127.0.0.1:%d" % handler.server.server_port
        self.origin = "http://" + host

    def arg(self, name, default=None):
        """The first value of a query parameter."""
        v = self.query.get(name)
        return v[0] if v else default

    def form(self):
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}

    def basic(self):
        """(user, password) of a Basic Authorization header, or None."""
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(h[6:]).decode("utf-8").partition(":")
        return user, password


class State:
    phase = 1
    at = None
    log = []
    lock = threading.Lock()


def serve(routes):
    """Serves `routes`: {(method, path): fn} or a fallback fn(req) under key None."""
    port = int(option("--port", "0"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self, body)
            if req.path == "/__control/phase":
                with State.lock:
                    State.phase = int(req.arg("n", "1"))
                    State.at = int(req.arg("at")) if req.arg("at") else None
                    State.log = []
                return self._send(200, {"phase": State.phase}, {})
            if req.path == "/__control/requests":
                with State.lock:
                    log, State.log = State.log, []
                return self._send(200, log, {})
            with State.lock:
                State.log.append({
                    "method": req.method,
                    "path": req.path,
                    "query": req.raw_query,
                    "auth": req.headers.get("Authorization") or req.headers.get("Api-Token"),
                    "agent": req.headers.get("User-Agent"),
                })
            fn = routes.get((req.method, req.path)) or routes.get(None)
            if fn is None:
                return self._send(404, {"error": "not found", "path": req.path}, {})
            status, payload, headers = fn(req)
            self._send(status, payload, headers or {})

        def _send(self, status, payload, headers):
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def phase():
    return State.phase


def phase_at():
    """The `at` of the last phase switch (epoch seconds), or None."""
    return State.at


def option(name, default=None):
    """A `--name VALUE` command-line option."""
    argv = sys.argv[1:]
    return argv[argv.index(name) + 1] if name in argv else default


def page_of(items, start, size):
    return items[start:start + size]


def unauthorized(message="Unauthorized"):
    return 401, {"error": message}, {}
