"""The process's one TLS context for the gateway's HTTP clients.

Building a context reads the whole CA bundle: about 30 ms of CPU. The RazorpayX adapter,
the sandbox's webhook sender and every checkout a test drives would otherwise build one
each (a test suite's few thousand of them took minutes). An ``ssl.SSLContext`` may be
shared by any number of clients and threads."""

from functools import cache

import httpx


@cache
def context():
    return httpx.create_ssl_context()
