"""A browser-like HTTP client for ``tests.load.bench_http``: a cookie jar per patient, forms
read from the pages (CSRF tokens included), every request timed under a step name."""

import html
import re
import threading
import time
from collections import Counter, defaultdict
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

HX = {"HX-Request": "true", "HX-Target": "results"}
BOOK_LINK = re.compile(r'href="(/me/book\?[^"]+)"')


class Recorder:
    """Latencies and statuses per step, shared by the client threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.times = defaultdict(list)  # step -> [seconds]
        self.statuses = defaultdict(Counter)  # step -> {status: n}
        self.errors = Counter()  # "step: exception" -> n

    def add(self, step, status, seconds):
        with self._lock:
            self.times[step].append(seconds)
            self.statuses[step][status] += 1

    def error(self, step, exc):
        with self._lock:
            self.errors[f"{step}: {type(exc).__name__}"] += 1

    def count(self, step=None):
        steps = [step] if step else list(self.times)
        return sum(len(self.times[s]) for s in steps)

    def server_errors(self, step=None):
        steps = [step] if step else list(self.statuses)
        return sum(n for s in steps for code, n in self.statuses[s].items() if code >= 500)


class Form:
    def __init__(self, action, method, fields):
        self.action, self.method, self.fields = action, method, fields


class _FormParser(HTMLParser):
    """Every form with what a browser would submit: inputs' values (checked radios only),
    each select's selected (else first) option."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self._form, self._select, self.csrf = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = Form(a.get("action") or "", (a.get("method") or "get").lower(), {})
            self.forms.append(self._form)
        elif tag == "input":
            if a.get("name") == "csrf_token" and a.get("value"):
                self.csrf = a["value"]
            if self._form is None or not a.get("name"):
                return
            kind = (a.get("type") or "text").lower()
            if kind in ("radio", "checkbox") and "checked" not in a:
                return
            if kind not in ("submit", "button"):
                self._form.fields[a["name"]] = a.get("value") or ""
        elif tag == "select" and self._form is not None:
            self._select = [a.get("name"), None, None]  # name, first, selected
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select[1] is None:
                self._select[1] = value
            if "selected" in a:
                self._select[2] = value

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None:
            name, first, selected = self._select
            if name and self._form is not None:
                self._form.fields[name] = selected if selected is not None else (first or "")
            self._select = None


def parse_forms(text):
    parser = _FormParser()
    parser.feed(text)
    return parser.forms, parser.csrf


def form_posting_to(text, pattern):
    """The first form whose action matches ``pattern`` (a regex)."""
    forms, _ = parse_forms(text)
    for form in forms:
        if re.search(pattern, form.action):
            return form
    raise LookupError(f"no form posting to {pattern!r}")


def first_book_link(text):
    match = BOOK_LINK.search(text)
    return html.unescape(match.group(1)) if match else None


class Browser:
    """One patient's browser: cookies, the session's CSRF token, timed requests."""

    def __init__(self, base_url, recorder=None, timeout=60.0):
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=timeout, follow_redirects=False)
        self.recorder = recorder
        self.csrf = None

    def close(self):
        self.http.close()

    def request(self, step, method, url, **kwargs):
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            if self.recorder is not None:
                self.recorder.error(step, exc)
            raise
        if self.recorder is not None:
            self.recorder.add(step, response.status_code, time.perf_counter() - started)
        return response

    def get(self, step, url, **kwargs):
        return self.request(step, "GET", url, **kwargs)

    def post(self, step, url, data, **kwargs):
        return self.request(step, "POST", url, data=data, **kwargs)

    def absolute(self, url):
        return urljoin(self.base_url + "/", url)

    def sign_in(self, email, password):
        """As a browser: the login page's token, the post, then a page of the signed-in
        session for the token later forms carry (sign-in starts a fresh session)."""
        page = self.get("sign_in", "/auth/login")
        form = form_posting_to(page.text, r"/auth/login")
        form.fields.update(email=email, password=password)
        answer = self.post("sign_in", "/auth/login", form.fields)
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in of {email} answered {answer.status_code}")
        home = self.get("sign_in", answer.headers["location"])
        _, self.csrf = parse_forms(home.text)
        if not self.csrf:
            raise RuntimeError(f"no CSRF token on {answer.headers['location']}")
