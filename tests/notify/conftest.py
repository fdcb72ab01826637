"""Notification fixtures: the capability's modules (until create_app imports them), a
small world, a fixed clock, and a real SMTP server on loopback."""

import socket
import threading

import pytest
import time_machine

from tests.notify.factories import NOW, build_world


@pytest.fixture
def clock():
    """Monday 1 June 2026, 08:00 IST; the clock stands still unless moved."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(app, ctx, clock):
    return build_world()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """What the SMTP server received: envelope sender, recipients and the raw message."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.refuse = {}  # address -> (code, text) to answer RCPT with

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            code, text = self.refuse[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes
        from email.policy import default

        with self.lock:
            self.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "message": message_from_bytes(envelope.content, policy=default),
                }
            )
        return "250 Message accepted"

    def to(self, address):
        return [m["message"] for m in self.messages if address in m["to"]]


@pytest.fixture
def smtp_server(app):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port; the app mails it."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: app.config.get(k) for k in ("MAIL_SERVER", "MAIL_PORT")}
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    try:
        yield inbox
    finally:
        app.config.update(saved)
        controller.stop()
