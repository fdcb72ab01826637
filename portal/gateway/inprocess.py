"""A requests adapter that answers from a WSGI app in the same process.

Lets the razorpay SDK (which speaks requests) reach the sandbox mounted in the portal
when no server is listening, as in tests driven by the Flask test client."""

from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client

from portal.gateway.payin import _Session


class WSGIAdapter(BaseAdapter):
    def __init__(self, wsgi_app):
        super().__init__()
        self.client = Client(wsgi_app, use_cookies=False)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(
            path=url.path,
            query_string=url.query,
            method=request.method,
            headers=headers,
            data=body,
            base_url=f"{url.scheme}://{url.netloc}",
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(answer.headers.items())
        response._content = answer.get_data()
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        answer.close()
        return response

    def close(self):
        pass


def wsgi_session(wsgi_app, base_url, timeout=10):
    session = _Session(timeout)
    session.mount(base_url.rstrip("/") + "/", WSGIAdapter(wsgi_app))
    return session
