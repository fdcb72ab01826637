"""GST arithmetic for invoices, reports and credit notes (pure): the CGST/SGST or IGST split
of a tax amount, the split of a reversal (cumulative over an invoice line), and the share
of an invoice line a partial reversal takes back."""

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


def reversed_share_now(value, tax, tax_reversed, earlier):
    """The part of ``value`` (taxable or exempt) a reversal of ``tax_reversed`` takes back
    after earlier reversals of the same line took back ``earlier`` = (their tax, their part
    of ``value``). Cumulative, as ``reversal_split``: the notes never drift a paisa per
    note, and a full reversal takes back exactly ``value``."""
    tax_before, value_before = earlier
    so_far = reversed_share(value, tax, tax_before + tax_reversed)
    return min(max(so_far - value_before, 0), max(value - value_before, 0))


def reversed_share(value, tax, tax_reversed):
    """The part of ``value`` (taxable or exempt) a reversal of ``tax_reversed`` out of
    ``tax`` takes back: pro rata, half-up; all of it when all the tax is reversed."""
    if tax <= 0 or tax_reversed <= 0:
        return 0
    if tax_reversed >= tax:
        return value
    return div_round_half_up(value * tax_reversed, tax)
