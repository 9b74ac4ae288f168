#!/usr/bin/env python3
"""A naive test service for the W3C Trace Context test suite (w3c/trace-context, test/).

The suite's harness POSTs a JSON list of {"url": ..., "arguments": [...]} to this
service; for each item the service POSTs `arguments` (as JSON) to `url`. The service
does no W3C processing at all: it copies every incoming `traceparent` and `tracestate`
header line verbatim (name, value, order, duplicates) onto each outgoing call. All the
spec work is left to the faultline agent in front of it (inbound position) or behind it
(outbound position, `--via`).

    harness ──► [agent inbound] ──► w3c_service ──► harness callback          (inbound)
    harness ──► w3c_service ──► agent outbound (--via) ──► harness callback   (outbound)

Usage:
    w3c_service.py [--listen 127.0.0.1:0] [--via HOST:PORT [--absolute-form]]

With `--via`, each call goes to HOST:PORT instead of the URL's own address, in origin
form with the URL's authority as `Host` (or, with `--absolute-form`, as an HTTP proxy
request: `POST http://authority/path`). The bound address is printed on stdout as
`w3c_service listening on HOST:PORT`. Standard library only.
"""

import argparse
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PROPAGATED = ("traceparent", "tracestate")
TIMEOUT = 10


def split_addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def read_body(handler):
    """The request body, by Content-Length or chunked transfer coding."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def call(url, arguments, propagated, via, absolute_form):
    """POSTs `arguments` to `url` with the propagated header lines; returns the status."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// callbacks are supported, got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host, port = via or (parts.hostname, parts.port or 80)
    target = url if (via and absolute_form) else path
    body = json.dumps(arguments).encode()
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", parts.netloc)
        conn.putheader("Accept", "application/json")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        for name, value in propagated:
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "w3c_service"
    # One write per response (flushed after each request), no Nagle: headers and body
    # sent separately on a kept-alive connection stall on delayed ACKs.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_POST(self):
        try:
            actions = json.loads(read_body(self) or b"[]")
        except ValueError as error:
            return self.reply(400, {"error": f"body is not JSON: {error}"})
        if not isinstance(actions, list):
            actions = [actions]
        # Verbatim: every line of the two headers, as received, in order.
        propagated = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() in PROPAGATED
        ]
        results, ok = [], True
        for action in actions:
            try:
                status = call(
                    action["url"],
                    action.get("arguments") or [],
                    propagated,
                    self.server.via,
                    self.server.absolute_form,
                )
                results.append({"url": action["url"], "status": status})
                ok = ok and status == 200
            except Exception as error:  # noqa: BLE001 - reported to the harness
                results.append({"url": action.get("url"), "error": repr(error)})
                ok = False
        self.reply(200 if ok else 502, results)

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("w3c_service: " + (format % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=split_addr, default=("127.0.0.1", 0))
    parser.add_argument(
        "--via", type=split_addr, help="send calls through this HTTP proxy"
    )
    parser.add_argument(
        "--absolute-form",
        action="store_true",
        help="with --via: absolute-form request target instead of origin form + Host",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args()
    if args.absolute_form and not args.via:
        parser.error("--absolute-form needs --via")

    server = ThreadingHTTPServer(args.listen, Handler)
    server.daemon_threads = True
    server.via = args.via
    server.absolute_form = args.absolute_form
    server.verbose = args.verbose
    host, port = server.server_address[:2]
    print(f"w3c_service listening on {host}:{port}", flush=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
