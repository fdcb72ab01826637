"""The templates' ``_``, ``gettext`` and ``ngettext`` (portal.templating) say exactly what
Jinja's own newstyle callables say: escaping, "%%", variables, plurals, both languages."""

import pytest
from flask_babel import force_locale, get_locale
from jinja2 import Environment

from portal import templating

TEMPLATES = [
    '{{ _("Find a doctor") }}',
    '{{ _("100%% refund") }}',
    '{{ _("Notifications: %(n)s unread", n=count) }}',
    '{{ _("Your wallet has %(amount)s.", amount=evil) }}',
    "{% trans names=evil %}with {{ names }}{% endtrans %}",
    "{% trans count=count %}{{ count }} free time (clinic time).{% pluralize %}"
    "{{ count }} free times (clinic time).{% endtrans %}",
    '{{ ngettext("The attached calendar file (.ics) adds the appointment to your calendar.",'
    ' "The attached calendar file (.ics) adds the appointments to your calendar.", count) }}',
    '{{ gettext("My visits") }}',
    # Variables named like the callables' own parameters (Jinja's are positional-only).
    '{{ _("%(string)s and %(context)s", string=evil, context=count) }}',
    '{{ ngettext("%(num)s free time (clinic time).", "%(num)s free times (clinic time).",'
    " count, singular=evil, plural=evil) }}",
]


def _stock(app, autoescape):
    """An environment with Jinja's own newstyle callables over the same translations."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)
    translations = templating._translations
    env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
    )
    return env


def _ours(app, autoescape):
    env = app.jinja_env.overlay(autoescape=autoescape)
    assert env.globals["_"] is templating._gettext
    return env


@pytest.mark.parametrize("language", ["en", "hi"])
@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("count", [1, 3])
def test_the_same_words_as_jinjas_own(app, language, autoescape, count):
    values = {"count": count, "evil": "<b>₹1 & 2</b>"}
    with app.test_request_context("/"), force_locale(language):
        stock, ours = _stock(app, autoescape), _ours(app, autoescape)
        for source in TEMPLATES:
            expected = stock.from_string(source).render(values)
            assert ours.from_string(source).render(values) == expected, source
        if language == "hi":  # the catalogue really answered (not the English fallback)
            assert ours.from_string('{{ _("My visits") }}').render() != "My visits"


def test_the_language_code_follows_a_forced_locale(app):
    with app.test_request_context("/"):
        get_locale()  # the request's locale chosen, as a page has by then
        assert templating.current_language() == "en"
        with force_locale("hi"):
            assert templating.current_language() == "hi"
        assert templating.current_language() == "en"
