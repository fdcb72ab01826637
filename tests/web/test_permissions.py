"""Walk every route in the URL map as every role and check who gets in.

A route belongs to an audience by its blueprint; a blueprint missing from AUDIENCE
fails the test, so a new route cannot arrive without a rule."""

import re

import pytest

# blueprint -> who may use it: "anyone", "anonymous-ok", or a role name.
AUDIENCE = {
    "public": "anyone",
    "language": "anyone",
    "auth": "anyone",
    "ops": "anyone",
    "webhooks": "signature",
    "patient": "patient",
    "provider": "provider",
    "admin": "admin",
    "notifications": "signed-in",
}
ROLES = ("anonymous", "patient", "provider", "admin")
NEVER = {500, 501, 502, 503}
# Find a doctor's times link here for everyone: another role is sent where it can act
# (portal.web.patient.handoff), never let in.
HANDED_OFF = {("patient.book", "GET"): {"provider": "/find", "admin": "/admin/visits/new"}}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        blueprint = rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else None
        url = re.sub(
            r"<(?:(\w+):)?(\w+)>",
            lambda m: (
                "999999"
                if m.group(1) in ("int", None) and "id" in m.group(2)
                else ("999999" if m.group(1) == "int" else "nothing-here")
            ),
            rule.rule,
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield blueprint, rule.endpoint, method, url


def test_every_route_has_an_audience(app):
    unknown = sorted({ep for bp, ep, _m, _u in _routes(app) if bp not in AUDIENCE})
    assert not unknown, f"routes without a permission rule in this test: {unknown}"


@pytest.mark.parametrize("role", ROLES)
def test_roles_on_every_route(app, client, make_user, login, role):
    if role != "anonymous":
        login(make_user(role))
    failures = []
    for blueprint, endpoint, method, url in _routes(app):
        if endpoint == "auth.logout":
            continue  # would end this walk's session
        audience = AUDIENCE[blueprint]
        response = client.open(url, method=method, data={}, buffered=True)  # streams end here
        status = response.status_code
        if status in NEVER and endpoint != "ops.readyz":
            failures.append(f"{method} {url} as {role}: {status}")
            continue
        if audience in ("patient", "provider", "admin"):
            if role == "anonymous":
                ok = status in (302, 401) and (status == 401 or "/auth/login" in response.location)
            elif role != audience and (endpoint, method) in HANDED_OFF:
                place = HANDED_OFF[endpoint, method][role]
                ok = status == 303 and response.location.split("?")[0].endswith(place)
            elif role != audience:
                ok = status == 403
            else:
                ok = status not in (401, 403)
        elif audience == "signed-in":
            ok = (
                (status == 302 and "/auth/login" in response.location)
                if role == "anonymous"
                else status not in (401, 403)
            )
        elif audience == "signature":
            ok = status in (400, 405)  # unsigned posts are refused, GETs don't exist
        else:
            ok = status not in (401, 403) or endpoint.startswith("auth.")
        if not ok:
            failures.append(f"{method} {url} as {role}: {status}")
    assert not failures, "\n".join(failures)


def test_state_changes_need_a_csrf_token(app, client, make_user, login):
    """With CSRF on, every state-changing route outside webhooks refuses a tokenless post."""
    login(make_user("admin"))
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        failures = []
        for blueprint, _endpoint, method, url in _routes(app):
            if method == "GET" or blueprint == "webhooks":
                continue
            status = client.open(url, method=method, data={}).status_code
            if status != 400:
                failures.append(f"{method} {url}: {status}")
        assert not failures, "\n".join(failures)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
