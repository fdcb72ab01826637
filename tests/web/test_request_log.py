"""One JSON line per request: who, what, the answer, how long it took and how much of that
was the request's own CPU (under load the rest is waiting for a core)."""

import json
import logging


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(record.getMessage()))


def test_the_request_line_says_the_route_status_time_and_cpu(app, client):
    # On the portal's own logger: it writes to stderr and does not propagate to the root.
    # Benchmarks run in the same process may have quietened it: as the app sets it up.
    events, lines = logging.getLogger("portal.events"), _Lines()
    saved = events.level, events.disabled
    events.setLevel(logging.INFO)
    events.disabled = False
    events.addHandler(lines)
    try:
        assert client.get("/auth/login").status_code == 200
    finally:
        events.removeHandler(lines)
        events.setLevel(saved[0])
        events.disabled = saved[1]
    (line,) = [x for x in lines.lines if x.get("kind") == "request"]
    assert (line["route"], line["status"], line["method"]) == ("/auth/login", 200, "GET")
    assert line["duration_ms"] >= 0 and isinstance(line["cpu_ms"], float)
    assert 0 <= line["cpu_ms"] <= line["duration_ms"] + 1
