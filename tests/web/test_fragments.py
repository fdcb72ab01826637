"""The pieces of a page rendered once per process (``{% cache %}``, portal.templating):
kept per key, language and URL root; each role's own top bar; nothing kept while
templates reload."""

import re

import pytest
from flask import render_template_string

from portal.templating import FragmentCache


def _nav(html):
    return re.search(r'<nav aria-label="[^"]*" id="main-nav">(.*?)</nav>', html, re.S).group(1)


def test_a_fragment_is_rendered_once_per_key_and_language(app):
    calls = []
    source = '{% cache "test-piece", which %}{{ count() }} {{ _("My visits") }}{% endcache %}'

    def count():
        calls.append(1)
        return len(calls)

    with app.test_request_context("/"):
        first = render_template_string(source, which="a", count=count)
        again = render_template_string(source, which="a", count=count)
        other = render_template_string(source, which="b", count=count)
    with app.test_request_context("/", headers={"Accept-Language": "hi"}):
        hindi = render_template_string(source, which="a", count=count)
    assert first == again == "1 My visits"
    assert other == "2 My visits"
    assert hindi.startswith("3 ") and "My visits" not in hindi
    with app.test_request_context("/", base_url="http://portal.test/clinic"):
        rooted = render_template_string(source, which="a", count=count)
    assert rooted == "4 My visits"  # another URL root: its own copy


def test_escaped_and_plain_text_are_kept_apart(app):
    plain = app.jinja_env.overlay(autoescape=False)
    source = '{% cache "escape-piece" %}<b>{{ _("My visits") }}</b>{% endcache %}'
    with app.test_request_context("/"):
        assert plain.from_string(source).render() == "<b>My visits</b>"
        html = app.jinja_env.from_string("{% autoescape true %}" + source + "{% endautoescape %}")
        assert html.render() == "<b>My visits</b>"  # markup, not the plain copy escaped


def test_nothing_is_kept_while_templates_reload(app):
    env = app.jinja_env.overlay(auto_reload=True)
    seen = []
    with app.test_request_context("/"):
        template = env.from_string('{% cache "reload-piece" %}{{ seen|length }}{% endcache %}')
        assert template.render(seen=seen) == "0"
        seen.append(1)
        assert template.render(seen=seen) == "1"


def test_each_role_and_a_visitor_see_their_own_links(app, client, make_user, login):
    visitor = _nav(client.get("/find").get_data(as_text=True))
    assert "/auth/login" in visitor and "/me/visits" not in visitor
    login(make_user("patient", name="Asha Patient"))
    patient = _nav(client.get("/find").get_data(as_text=True))
    assert "/me/visits" in patient and "/admin/" not in patient and "Asha Patient" in patient
    client.post("/auth/logout")
    login(make_user("admin", name="Ravi Admin"))
    admin = _nav(client.get("/find").get_data(as_text=True))
    assert "/admin/visits" in admin and "/me/visits" not in admin and "Ravi Admin" in admin
    assert "Asha Patient" not in admin  # the name is never kept
    assert ("links", "admin", True, "en", "") in app.jinja_env.portal_fragments


def test_the_cache_is_bounded_and_keeps_what_is_shown(app):
    kept = app.jinja_env.portal_fragments
    saved = dict(kept)
    try:
        kept.clear()
        with app.test_request_context("/"):
            for n in range(FragmentCache.MAX_FRAGMENTS + 5):
                html = render_template_string('{% cache "bound", n %}{{ n }}{% endcache %}', n=n)
                assert html == str(n)
                if n % 100 == 0:  # the first piece is shown again and again (a top bar's)
                    render_template_string('{% cache "bound", 0 %}{{ 0 }}{% endcache %}')
        assert len(kept) == FragmentCache.MAX_FRAGMENTS
        keys = [key[1] for key in kept]
        assert 0 in keys and 1 not in keys and FragmentCache.MAX_FRAGMENTS + 4 in keys
    finally:
        kept.clear()
        kept.update(saved)


def test_an_orm_object_is_no_key(app, make_user):
    """An ORM object compares by identity: it would never be found again, nor its changes
    seen. A row of values is a key; an ORM object is refused."""
    user = make_user("patient")
    with app.test_request_context("/"), pytest.raises(TypeError):
        render_template_string('{% cache "row", u %}{{ u.name }}{% endcache %}', u=user)
