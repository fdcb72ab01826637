"""A small TCP proxy in front of the real-HTTP sandbox that breaks Razorpay's answers on
the way back: the request reaches Razorpay and is made, and the answer the adapter reads
is cut off half-way (``CUT``), replaced by a proxy's HTML 502 page (``HTML_502``), or
marked gzip while it is not (``BAD_GZIP``). Every other request passes untouched."""

import http.client
import socket
import socketserver
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

CUT, HTML_502, BAD_GZIP = "cut", "html-502", "bad-gzip"
HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


def _read_request(rfile):
    method, path, _ = rfile.readline().decode().split(" ", 2)
    headers = {}
    while True:
        line = rfile.readline().decode()
        if line in ("\r\n", "\n", ""):
            break
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    length = int(headers.get("Content-Length") or 0)
    return method, path, headers, (rfile.read(length) if length else None)


@contextmanager
def broken_proxy(target_url, *, match, method="POST", mode=CUT):
    """Yield the URL of a proxy to ``target_url`` that breaks (``mode``) the answers of
    ``method`` requests whose path contains ``match``."""
    target = urlsplit(target_url)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            verb, path, headers, body = _read_request(self.rfile)
            headers.pop("Connection", None)
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            upstream.request(verb, path, body=body, headers=headers)
            answer = upstream.getresponse()
            status, reason, data = answer.status, answer.reason, answer.read()
            upstream.close()
            kept = [
                (k, v)
                for k, v in answer.getheaders()
                if k.lower() not in ("content-length", "connection", "transfer-encoding")
            ]
            broken = verb == method and match in path
            if broken and mode == HTML_502:
                status, reason, data = 502, "Bad Gateway", HTML_PAGE
                kept = [("Content-Type", "text/html")]
            elif broken and mode == BAD_GZIP:
                kept.append(("Content-Encoding", "gzip"))
            head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in kept)]
            head += [f"Content-Length: {len(data)}", "Connection: close", "", ""]
            self.wfile.write("\r\n".join(head).encode())
            if broken and mode == CUT:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(data)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def portal_through_broken_proxy(app, gateway, *, match, method="POST", mode=CUT):
    """The portal's adapters reach the sandbox (``gateway.url``) through ``broken_proxy``,
    without the adapter's own retries (each broken answer is one attempt of the job)."""
    keys = ("RAZORPAY_BASE_URL", "RAZORPAY_RETRIES")
    saved = {k: app.config[k] for k in keys if k in app.config}
    with broken_proxy(gateway.url, match=match, method=method, mode=mode) as url:
        app.config.update(RAZORPAY_BASE_URL=url, RAZORPAY_RETRIES=0)
        app.extensions.pop("gateway_adapters", None)
        try:
            yield url
        finally:
            for key in keys:
                app.config.pop(key, None)
            app.config.update(saved)
            app.extensions.pop("gateway_adapters", None)
