"""The appointments list's filters with a blank-looking value (review of the admin back
office): a space or a tab is no filter, never a 500 nor a refusal."""

import pytest

from tests.web.booking.helpers import hold

FILTERS = ["clinic", "provider", "service_kind", "status", "payment", "attention", "preset"]


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("value", [" ", "\t", " \t "])
def test_a_blank_filter_is_no_filter(app, client, login, world, name, value):
    """/admin/visits?provider=%20: the field's Optional() stopped the validation on
    whitespace (so validate_provider never ran) and to_filter then called int(" "): a
    ValueError, a 500 (a hand-edited or copied link with a stray space does it). The
    other selects refused a space as "Not a valid choice". A blank filter now means
    "Any": the list shows every visit, as without it."""
    hold(app, world)
    login(world.admin)
    try:
        answer = client.get("/admin/visits", query_string={name: value})
    except ValueError as exc:  # PROPAGATE_EXCEPTIONS in tests: a 500 in production
        pytest.fail(f"500 ({exc})")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200, text[:500]
    assert "Priya Sharma" in text and "1 visit" in text


def test_a_filter_id_with_spaces_around_it_still_filters(app, client, login, world):
    hold(app, world)
    login(world.admin)
    answer = client.get("/admin/visits", query_string={"provider": f" {world.doc1} "})
    assert answer.status_code == 200 and "Priya Sharma" in answer.get_data(as_text=True)
    other = client.get("/admin/visits", query_string={"provider": f" {world.doc2}\t"})
    assert other.status_code == 200 and "No visits found" in other.get_data(as_text=True)
