"""Each template's globals are one dict (``portal.templating.Environment``): what Jinja's
ChainMap over the environment's globals gave, read in C on every render and import."""

from flask import render_template_string


def test_a_templates_globals_are_the_environments_in_one_dict(app):
    env = app.jinja_env
    template = env.get_template("base.html")
    assert type(template.globals) is dict
    assert {name: template.globals[name] for name in env.globals} == dict(env.globals)


def test_a_templates_own_globals_stay_its_own(app):
    env = app.jinja_env
    mine = env.from_string("{{ LANGUAGES }} {{ extra }}", globals={"LANGUAGES": "mine", "extra": 1})
    assert mine.render() == "mine 1"
    assert env.globals["LANGUAGES"] != "mine" and "extra" not in env.globals
    assert env.from_string("{{ extra is defined }}").render() == "False"


def test_a_page_importing_macros_renders_with_the_globals(app):
    source = (
        '{% from "patient/visits/_macros.html" import breakup %}'
        "{{ breakup(100000, 5000, 900, 105900) }} {{ _('Cancel') }}"
    )
    with app.test_request_context("/"):
        html = render_template_string(source)
    assert "<strong>₹1,059</strong>" in html and "Cancel" in html
