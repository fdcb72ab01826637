"""One JSON line per request: who, what, the answer, how long it took and how much of that
was the request's own CPU (under load the rest is waiting for a core)."""

import json
import logging

from tests.logrecords import logged


def test_the_request_line_says_the_route_status_time_and_cpu(app, client):
    with logged("portal.events", logging.INFO) as records:
        assert client.get("/auth/login").status_code == 200
    lines = [json.loads(r.getMessage()) for r in records]
    (line,) = [x for x in lines if x.get("kind") == "request"]
    assert (line["route"], line["status"], line["method"]) == ("/auth/login", 200, "GET")
    assert line["duration_ms"] >= 0 and isinstance(line["cpu_ms"], float)
    assert 0 <= line["cpu_ms"] <= line["duration_ms"] + 1
