"""The gateway's HTTP clients share the process's one TLS context (portal.gateway.tls):
building one reads the whole CA bundle, about 30 ms of CPU a client."""

import ssl
from unittest import mock

from portal.gateway import tls
from portal.gateway.payouts import RazorpayXPayouts
from portal.gateway.sandbox.delivery import http_transport


def test_adapters_and_the_sandboxs_sender_build_one_tls_context_between_them(monkeypatch):
    built = mock.Mock(wraps=ssl.create_default_context)
    monkeypatch.setattr(ssl, "create_default_context", built)
    tls.context.cache_clear()
    clients = [
        RazorpayXPayouts("rzp_test_k", "secret", "2323230000000001", "https://api.razorpay.com"),
        RazorpayXPayouts("rzp_test_k", "secret", "2323230000000001", "https://api.razorpay.com"),
        http_transport(),
    ]
    for client in clients:
        client.close()
    assert built.call_count == 1
