"""GST arithmetic for invoices, reports and credit notes (pure): the CGST/SGST or IGST split
of a tax amount, the split of a reversal (cumulative over an invoice line), and the
taxable and exempt value a credit note takes back with its refund."""

from portal.domain.rates import div_round_half_up


def state_code(gstin):
    """The two-digit state code a GSTIN starts with, or None."""
    return gstin[:2] if gstin and gstin[:2].isdigit() else None


def split_tax(tax, supplier_state, supply_state):
    """``(cgst, sgst, igst)``: within one state half each (CGST rounded half-up, SGST the
    rest, so they add up to the paisa); between states, or when either state is unknown
    to be different, all IGST."""
    if supplier_state is None or supply_state is None or supplier_state == supply_state:
        cgst = div_round_half_up(tax, 2)
        return cgst, tax - cgst, 0
    return 0, 0, tax


def split_for_gstin(tax, gstin):
    """The split of ``tax`` on a document issued under ``gstin``. Place of supply: the
    clinic's own state (care is given there; no recipient address is on record)."""
    state = state_code(gstin)
    return split_tax(tax, state, state)


def reversal_split(tax, line, before):
    """``(cgst, sgst, igst)`` of a credit note reversing ``tax`` of an invoice line split
    ``line`` (its stored ``(cgst, sgst, igst)``), after earlier notes on the line took back
    ``before`` (their summed split). Cumulative: all the GST reversed so far is split as
    the line was (CGST half-up, SGST the rest, or all IGST) and the earlier notes' share is
    taken off, so the notes never drift a paisa from the line per note and a full
    reversal takes back exactly the line's CGST, SGST and IGST."""
    if line[2]:  # the line was IGST
        return 0, 0, tax
    so_far = sum(before) + tax
    # Never more CGST in all than the line's own: a line backfilled to keep a past invoice
    # row as reported holds CGST rounded down (gst0a5155ued1), and a full reversal must
    # take back exactly its split. Clamped too: notes issued before the cumulative rule
    # (split one by one) may already have taken back a paisa more CGST than half; a note
    # never carries a negative part.
    cgst_so_far = min(div_round_half_up(so_far, 2), line[0])
    cgst = min(max(cgst_so_far - before[0], 0), tax)
    return cgst, tax - cgst, 0


def values_taken_back(line, refunded, gst_reversed, noted):
    """``(taxable, exempt)`` value a credit note takes back from a document (an invoice
    line or a reschedule fee) whose ``line`` is ``(taxable, exempt)``, when ``refunded``
    paise of it have been refunded in all and ``gst_reversed`` of its GST reversed in all
    (both counting this note's refund and tax), after earlier notes took back ``noted`` =
    ``(taxable, exempt)``.

    The value refunded so far is the refunds less the GST reversed with them, split as the
    line is (taxable half-up, exempt the rest), and this note takes the difference from what
    earlier notes took. So a note's taxable + exempt + GST is exactly its refund (the split
    follows refund / paid, not the rounded GST: pro rata to a ₹4.50 GST line, one paisa of
    GST rounding was ₹1.17 of value), the notes of a line never take back more than it
    holds in either part, and a line refunded in full in any number of notes is taken back
    exactly. Notes issued under the earlier rule (pro rata to the GST) keep their values;
    the next note on the line makes up the difference (never below 0 in a part)."""
    taxable, exempt = line
    taxable_before, exempt_before = noted
    value_so_far = min(max(refunded - gst_reversed, 0), taxable + exempt)
    taxable_so_far = (
        min(div_round_half_up(value_so_far * taxable, taxable + exempt), taxable)
        if taxable + exempt
        else 0
    )
    room_taxable = max(taxable - taxable_before, 0)
    room_exempt = max(exempt - exempt_before, 0)
    value = min(max(value_so_far - taxable_before - exempt_before, 0), room_taxable + room_exempt)
    taxable_now = min(max(taxable_so_far - taxable_before, 0), value, room_taxable)
    exempt_now = min(value - taxable_now, room_exempt)
    return value - exempt_now, exempt_now
