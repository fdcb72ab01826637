"""A Razorpay-compatible sandbox: a test double of Razorpay and RazorpayX for dev and tests.

``create_sandbox_app(config)`` builds it as its own WSGI app; ``mount_sandbox(portal_app)``
serves it inside the portal under /sandbox. See docs/gateway.md."""

from portal.gateway.sandbox.app import (
    Sandbox,
    create_sandbox_app,
    follow_public_url,
    mount_sandbox,
)

__all__ = ["Sandbox", "create_sandbox_app", "follow_public_url", "mount_sandbox"]
