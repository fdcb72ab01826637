"""Issue #15, finding 4: numbers beyond the database's integers in ids, ``page=``,
filters and forms are a 404 / the default / a message, never a 500; and the request log
line never breaks a request."""

import re

import pytest
from werkzeug.routing import IntegerConverter
from wtforms import IntegerField, StringField

import portal.logs
from portal.web.forms.base import PortalForm
from portal.web.forms.money import parse_rupees

HUGE = str(2**64)
ROLES = ("anonymous", "patient", "provider", "admin")
QUERY = {
    name: HUGE
    for name in (
        "page",
        "per_page",
        "cursor",
        "provider",
        "service",
        "clinic",
        "provider_id",
        "visit",
        "item",
        "items",
        "specialization",
        "status",
        "start",
    )
}
FORM = {
    name: HUGE
    for name in (
        "provider",
        "service",
        "clinic",
        "providers",
        "items",
        "max_uses",
        "max_uses_per_patient",
        "duration_minutes",
        "clinic_id",
        "weekday",
        "value",
        "amount",
        "coupon",
        "code",
        "person",
    )
}


def huge_urls(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint == "auth.logout":
            continue
        url = re.sub(
            r"<(?:(\w+):)?(\w+)>", lambda m: HUGE if m.group(1) == "int" else "x", rule.rule
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, url


@pytest.mark.parametrize("role", ROLES)
def test_huge_numbers_anywhere_give_no_500(app, client, make_user, login, role):
    if role != "anonymous":
        login(make_user(role))
    failures = []
    for _rule, method, url in huge_urls(app):
        status = client.open(url, method=method, query_string=QUERY, data=FORM).status_code
        if status >= 500 and url != "/readyz":
            failures.append(f"{method} {url}: {status}")
    assert not failures, "\n".join(failures)


# "²" and "٣" are digits to str.isdigit() but not to int(): a filter or form that checks
# one and calls the other was a 500.
UNICODE_DIGITS = "²٣"
TEXT_IDS = ("actor", "clinic_id", "provider_id", "visit", "person", "penalty_provider")


@pytest.mark.parametrize("role", ("patient", "admin"))
def test_unicode_digits_anywhere_give_no_500(app, client, make_user, login, role):
    login(make_user(role))
    query = {**{name: UNICODE_DIGITS for name in QUERY}, **dict.fromkeys(TEXT_IDS, "²")}
    form = {**{name: UNICODE_DIGITS for name in FORM}, "person": "dependent:²"}
    failures = []
    for _rule, method, url in huge_urls(app):
        status = client.open(url, method=method, query_string=query, data=form).status_code
        if status >= 500 and url != "/readyz":
            failures.append(f"{method} {url}: {status}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/admin/reports/gst?month=2026-06&clinic_id=%C2%B2", 422),  # "choose a clinic"
        ("/admin/reports/gst?month=2026-06&clinic_id=%C2%B2&format=csv", 422),
        ("/admin/reports/tds?fy=2026-27&provider_id=%C2%B2", 422),
        ("/admin/reports/audit?actor=%C2%B2", 422),  # "no such user"
        ("/admin/audit?actor=%C2%B2", 422),
        (f"/admin/audit?actor={2**31}", 422),
        ("/admin/transactions?visit=%C2%B2", 200),  # a visit number matching nothing
        ("/admin/transactions.csv?visit=%C2%B2", 200),
    ],
)
def test_a_unicode_digit_in_a_report_filter_is_its_message(client, make_user, login, url, status):
    login(make_user("admin"))
    assert client.get(url).status_code == status, url


@pytest.mark.parametrize("name", ("after", "before"))
def test_a_keyset_cursor_beyond_the_id_columns_shows_the_first_page(client, make_user, login, name):
    from datetime import UTC, datetime

    from portal.pagination import encode_cursor

    login(make_user("patient"))
    cursor = encode_cursor([datetime(2026, 1, 1, tzinfo=UTC), 2**40])
    assert client.get("/notifications/", query_string={name: cursor}).status_code == 200


def test_an_id_beyond_the_database_is_a_404(client, make_user, login):
    login(make_user("patient"))
    assert client.get(f"/me/visits/{HUGE}").status_code == 404
    assert client.get(f"/me/visits/{2**31}").status_code == 404
    assert client.get(f"/me/book?provider={HUGE}&service=1&clinic=1").status_code < 500


def test_every_int_rule_is_bounded(app):
    for rule in app.url_map.iter_rules():
        for name, converter in rule._converters.items():
            if isinstance(converter, IntegerConverter):
                assert converter.max == 2**31 - 1, (rule.rule, name)


def test_forms_refuse_huge_numbers_control_characters_and_endless_text(app):
    class Probe(PortalForm):
        n = IntegerField()
        text = StringField()

    with app.test_request_context(method="POST", data={"n": HUGE, "text": "a\x00b" + "x" * 5000}):
        form = Probe(meta={"csrf": False})
        assert not form.validate()
        assert form.n.errors and form.text.errors
    with app.test_request_context(method="POST", data={"n": "5", "text": "x" * 3000}):
        form = Probe(meta={"csrf": False})
        assert not form.validate() and "at most 2000" in form.text.errors[0]
    with pytest.raises(ValueError):
        parse_rupees("9" * 30)


def test_the_request_log_line_never_breaks_a_request(app, client, monkeypatch):
    real = portal.logs.log_event

    def broken(kind, **fields):
        if kind == "request":
            raise RuntimeError("log sink down")
        return real(kind, **fields)

    monkeypatch.setattr(portal.logs, "log_event", broken)
    assert client.get("/auth/login").status_code == 200
    monkeypatch.setattr(portal.logs, "log_event", real)
    assert client.get("/auth/login").status_code == 200  # and the next one too


def test_a_nul_in_a_query_string_is_a_400(client, make_user, login):
    login(make_user("admin"))
    assert client.get("/admin/users", query_string={"q": "a\x00b"}).status_code == 400
    assert client.get("/admin/users", query_string={"q": "ab"}).status_code == 200
