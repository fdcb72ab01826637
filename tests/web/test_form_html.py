"""``portal.web.forms.html.html_params`` writes what WTForms' own writes, byte for byte."""

import itertools

import pytest
from markupsafe import Markup
from wtforms import Form, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.widgets import core

from portal.web.forms import html

WTFORMS_OWN = html.WTFORMS_OWN

VALUES = [
    "plain",
    "",
    'say "hi" & <b>',
    "it's",
    Markup('<em class="x">safe</em>'),
    Markup("a &amp; b"),
    0,
    7,
    3.5,
    None,
    True,
    False,
    "हिन्दी",
]
KEYS = ["id", "name", "class_", "for_", "data_hx_target", "aria_invalid", "type", "z<", "hx-post"]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("key", KEYS)
def test_one_attribute_as_wtforms_writes_it(key, value):
    ours, theirs = html.html_params(**{key: value}), WTFORMS_OWN(**{key: value})
    assert ours == theirs and isinstance(ours, Markup)


def test_several_attributes_sorted_as_wtforms_sorts_them():
    for keys in itertools.permutations(["value", "id", "selected", "data_x", "class_"], 5):
        kwargs = dict(zip(keys, ["v", "f-1", True, Markup('"q"'), False]))
        assert html.html_params(**kwargs) == WTFORMS_OWN(**kwargs)
    assert html.html_params() == WTFORMS_OWN() == Markup("")


def test_the_widgets_use_it_and_write_the_same_fields(app):  # the app factory installs it
    class F(Form):
        name = StringField(validators=[DataRequired()])
        kind = SelectField(
            choices=[SelectChoice("a", 'A "one"'), SelectChoice("b", "B & two")], default="b"
        )

    form = F()
    assert WTFORMS_OWN is not html.html_params
    assert core.html_params is html.html_params and core.Input.html_params is html.html_params
    assert form.name(aria_invalid="false") == Markup(
        '<input aria-invalid="false" id="name" name="name" required type="text" value="">'
    )
    assert form.kind() == Markup(
        '<select id="kind" name="kind"><option value="a">A &#34;one&#34;</option>'
        '<option selected value="b">B &amp; two</option></select>'
    )
