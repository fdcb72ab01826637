"""Addresses the portal gives to others (the payment gateway's return): the site's
``PUBLIC_URL`` when one is set, so a load balancer's inside address never reaches Razorpay;
in the embedded mode with none set, the address the request came to (the demo on any port,
or from a phone on the same network)."""

from flask import current_app, url_for

from portal.config import public_url_for


def external_url(endpoint, **values):
    config = current_app.config
    if config.get("PUBLIC_URL_FOLLOWS_SERVER") or not config.get("PUBLIC_URL"):
        return url_for(endpoint, _external=True, **values)
    return public_url_for(endpoint, **values)
