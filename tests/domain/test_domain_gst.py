"""GST splits: a credit note's split is cumulative over the invoice line it reverses, so any
series of reversals of a whole line takes back exactly the line's CGST, SGST and IGST."""

from hypothesis import given
from hypothesis import strategies as st

from portal.domain.gst import reversal_split, split_for_gstin, split_tax

GSTIN_KA = "29ABCDE1234F1Z5"


def _reverse(line, parts):
    notes, before = [], (0, 0, 0)
    for tax in parts:
        note = reversal_split(tax, line, before)
        notes.append(note)
        before = tuple(b + n for b, n in zip(before, note, strict=True))
    return notes, before


def test_two_odd_reversals_of_a_line_take_back_its_split_exactly():
    line = split_for_gstin(22_680, GSTIN_KA)
    assert line == (11_340, 11_340, 0)
    notes, total = _reverse(line, [7_627, 15_053])
    assert notes == [(3_814, 3_813, 0), (7_526, 7_527, 0)]
    assert total == line  # split one by one: CGST 3,814 + 7,527 = 11,341


@given(
    st.integers(min_value=1, max_value=10_000_000),
    st.lists(st.integers(min_value=1, max_value=1_000_000), min_size=1, max_size=6),
    st.booleans(),
)
def test_any_full_reversal_nets_zero_in_each_part(tax, weights, interstate):
    line = split_tax(tax, "29", "27") if interstate else split_for_gstin(tax, GSTIN_KA)
    cuts = sorted({tax * sum(weights[: i + 1]) // sum(weights) for i in range(len(weights))})
    parts = [b - a for a, b in zip([0, *cuts], cuts, strict=False) if b > a]
    notes, total = _reverse(line, parts)
    assert total == line
    assert all(min(n) >= 0 and sum(n) == t for n, t in zip(notes, parts, strict=True))


def test_notes_split_one_by_one_before_are_made_up_by_the_next():
    line = split_for_gstin(22_680, GSTIN_KA)
    one = split_tax(7_627, "29", "29")  # two earlier notes, each split on its own
    legacy = (2 * one[0], 2 * one[1], 0)
    assert legacy == (7_628, 7_626, 0)
    assert reversal_split(7_426, line, legacy) == (3_712, 3_714, 0)  # nets the line's


def test_a_line_backfilled_with_cgst_rounded_down_is_reversed_to_its_own_split():
    """gst0a5155ued1 keeps past invoice rows as reported by rounding some odd lines' CGST
    down: a full reversal takes back exactly that split, in one note or in two."""
    assert reversal_split(451, (225, 226, 0), (0, 0, 0)) == (225, 226, 0)
    first = reversal_split(200, (225, 226, 0), (0, 0, 0))
    second = reversal_split(251, (225, 226, 0), first)
    assert tuple(a + b for a, b in zip(first, second)) == (225, 226, 0)


@given(
    value=st.integers(0, 10**7),
    tax=st.integers(1, 10**6),
    cuts=st.lists(st.integers(1, 10**6), min_size=1, max_size=6),
)
def test_reversed_values_add_up_to_the_whole_on_a_full_reversal(value, tax, cuts):
    from portal.domain.gst import reversed_share_now

    # Reversals of the whole tax in parts (the last takes what is left).
    parts, left = [], tax
    for cut in cuts:
        if left <= 0:
            break
        parts.append(min(cut, left))
        left -= parts[-1]
    if left:
        parts.append(left)
    tax_before = value_before = 0
    for part in parts:
        got = reversed_share_now(value, tax, part, (tax_before, value_before))
        assert got >= 0
        tax_before, value_before = tax_before + part, value_before + got
    assert value_before == value
