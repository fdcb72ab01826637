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


# Credit-note values: a note takes back exactly its refund (taxable + exempt + GST).


def _gst_kept(gst, paid, kept):
    from portal.refunds.money import gst_kept

    return gst_kept(gst, paid, kept)


def _issue(line, refunds):
    """Credit notes ``(taxable, exempt, gst, (cgst, sgst, igst))`` for a document line
    ``(taxable, exempt, gst, paid)`` refunded in ``refunds`` (paise, in order), with the GST
    each reversal posts as ``refunds.money`` posts it (a cancellation reverses G − Gk, a
    further refund ΔGk). A reversal of no GST issues no note (as in the ledger), so the
    note after it records both refunds; returns ``(notes, refund each note records)``."""
    from portal.domain.gst import values_taken_back

    taxable, exempt, gst, paid = line
    split = split_for_gstin(gst, GSTIN_KA)
    notes, records = [], []
    kept, refunded, unnoted = paid, 0, 0
    noted, tax_noted, split_noted = (0, 0), 0, (0, 0, 0)
    for refund in refunds:
        first = kept == paid
        after = kept - refund
        tax = (gst if first else _gst_kept(gst, paid, kept)) - _gst_kept(gst, paid, after)
        kept, refunded, unnoted = after, refunded + refund, unnoted + refund
        if tax <= 0:
            continue
        values = values_taken_back((taxable, exempt), refunded, tax_noted + tax, noted)
        parts = reversal_split(tax, split, split_noted)
        notes.append((*values, tax, parts))
        records.append(unnoted)
        unnoted = 0
        noted = (noted[0] + values[0], noted[1] + values[1])
        tax_noted += tax
        split_noted = tuple(a + b for a, b in zip(split_noted, parts, strict=True))
    return notes, records


def _line(fee, taxed, discount_share):
    """An item's invoice line as pricing makes it: platform fee 5% of the fee, GST 18% of
    the taxable part (the fee too when the service is taxed), paid = total − discount."""
    from portal.domain.rates import div_round_half_up

    platform = div_round_half_up(fee * 5, 100)
    taxable = platform + (fee if taxed else 0)
    gst = div_round_half_up(taxable * 18, 100)
    total = fee + platform + gst
    exempt = 0 if taxed else fee
    return taxable, exempt, gst, total - min(discount_share, total - gst)


def test_the_reviewers_patient_tier_refund_is_its_credit_note():
    """Demo V000074: ₹529.50 paid, 75% − ₹100 = ₹297.13 back; pro rata to the GST rounded
    to 253 paise the note took back ₹297.70. Then ₹102.87 more: ₹400 in all, to the paisa."""
    line = (2_500, 50_000, 450, 52_950)
    notes, records = _issue(line, [29_713, 10_287])
    assert [n[:3] for n in notes] == [(1_403, 28_057, 253), (486, 9_714, 87)]
    assert [sum(n[:3]) for n in notes] == records == [29_713, 10_287]


def _assert_notes_add_up(line, refunds):
    taxable, exempt, gst, paid = line
    notes, records = _issue(line, refunds)
    for (t, e, g, parts), refund in zip(notes, records, strict=True):
        assert min(t, e, g, *parts) >= 0
        assert t + e + g == refund  # the note is its refund, to the paisa
        assert sum(parts) == g
    total = [sum(n[i] for n in notes) for i in range(3)]
    split = [sum(n[3][i] for n in notes) for i in range(3)]
    line_split = split_for_gstin(gst, GSTIN_KA)
    assert total[0] <= taxable and total[1] <= exempt and total[2] <= gst
    assert all(s <= ls for s, ls in zip(split, line_split, strict=True))
    # All of it back, no discount, the last refund reversing GST (a refund of less than
    # about 1/G of paid reverses none and issues no note: docs/decisions.md).
    if sum(records) == paid == taxable + exempt + gst:
        assert total == [taxable, exempt, gst] and split == list(line_split)
    return notes


def _refunds(paid, cuts):
    """Refunds of parts of ``paid`` between the cut points (millionths of ``paid``, in
    order); a cut at 1,000,000 refunds the rest."""
    points = sorted({paid * c // 1_000_000 for c in cuts} | {0})
    return [b - a for a, b in zip(points, points[1:], strict=False) if b > a]


@given(
    fee=st.integers(0, 5_000_000),
    taxed=st.booleans(),
    discount=st.integers(0, 5_000_000),
    cuts=st.lists(st.integers(1, 1_000_000), min_size=1, max_size=5),
    to_the_end=st.booleans(),
)
def test_every_note_is_its_refund_and_the_notes_never_pass_the_line(
    fee, taxed, discount, cuts, to_the_end
):
    line = _line(fee, taxed, discount)
    paid = line[3]
    _assert_notes_add_up(line, _refunds(paid, [*cuts, 1_000_000] if to_the_end else cuts))


@given(
    taxable=st.integers(0, 10**6),
    exempt=st.integers(0, 10**7),
    gst=st.integers(1, 10**6),
    discount=st.integers(0, 10**7),
    cuts=st.lists(st.integers(1, 1_000_000), min_size=1, max_size=6),
)
def test_any_line_and_refunds_add_up(taxable, exempt, gst, discount, cuts):
    """Any line (GST not tied to the taxable part: a backfilled or hand-priced line) whose
    paid amount still holds its GST."""
    paid = taxable + exempt + gst - min(discount, taxable + exempt)
    _assert_notes_add_up((taxable, exempt, gst, paid), _refunds(paid, [*cuts, 1_000_000]))


def test_every_paisa_of_a_small_line_refunded_in_two_adds_up():
    """Deterministic sweep: each first refund of the ₹529.50 consult, the rest after."""
    line = (2_500, 50_000, 450, 52_950)
    for first in range(1, 52_950, 7):
        notes = _assert_notes_add_up(line, [first, 52_950 - first])
        if sum(sum(n[:3]) for n in notes) == 52_950:
            assert [sum(n[i] for n in notes) for i in range(3)] == [2_500, 50_000, 450]


def test_a_note_after_one_issued_pro_rata_to_the_gst_makes_up_the_difference():
    """Stored notes keep their values; the next note on the line brings the line's notes
    back to its refunds (docs/decisions.md)."""
    from portal.domain.gst import values_taken_back

    old = (1_406, 28_111)  # CN/2026-27/000011: ₹297.70 for a ₹297.13 refund (GST 253)
    got = values_taken_back((2_500, 50_000), 40_000, 253 + 83, old)
    assert sum(got) + 83 == 10_287 - 57  # ₹102.87 back less the 57 paise taken before
    assert (old[0] + got[0], old[1] + got[1]) == (1_889, 37_775)  # as if issued by the rule
    full = values_taken_back((2_500, 50_000), 52_950, 450, old)
    assert (old[0] + full[0], old[1] + full[1]) == (2_500, 50_000)
