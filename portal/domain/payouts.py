"""Provider payout arithmetic: TDS (section 194J), payout mode, cycle minimum.

TDS model: once the provider's gross payouts in the financial year *exceed* the
threshold, every payout is taxed at the rate; the payout that crosses the threshold is
taxed on the year's untaxed gross so far *including itself*, later payouts on their own
gross. One formula covers both: base = untaxed gross before + this gross (after the
crossing the untaxed gross is 0).

Section 206AA: a payee without a PAN on file when the payout is made is deducted at the
higher of the rate and the rule's no-PAN rate (20%) once over the threshold
(:func:`rate_for_payee`); the threshold rule is the same (docs/decisions.md).

Decision for a small crossing payout: the TDS due can exceed the payout itself (₹49,900
untaxed before, a ₹200 payout crosses). A payout never goes below zero, so the TDS
deducted is capped at the gross and the rest is carried as a *shortfall* that the next
payouts of the same year deduct first (pass it back as ``fy_tds_shortfall_before``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .policy import DEFAULT_POLICY, Policy, TdsRule
from .pricing import ProviderEarning, provider_earning  # re-exported: earning = F − commission
from .rates import apply_bps, format_inr, percent_text
from .text import N_, Text

MODE_IMPS = "IMPS"
MODE_NEFT = "NEFT"
MODE_UPI = "UPI"

# RazorpayX's smallest payout (400 "The amount must be atleast INR 1.00" below it). A fact
# of the gateway, not clinic policy: a smaller net is carried forward, never sent.
GATEWAY_MINIMUM_PAYOUT = 100
# Why a payout deducted more than the rule's rate (``TdsResult.higher_section``, stored
# as ``Payout.tds_higher_section``): no PAN on file when it was made.
NO_PAN_SECTION = "206AA"

__all__ = [
    "TdsResult",
    "tds_for_payout",
    "rate_for_payee",
    "NO_PAN_SECTION",
    "no_pan_note",
    "join_notes",
    "payout_mode",
    "CycleDecision",
    "cycle_payable",
    "provider_earning",
    "ProviderEarning",
    "MODE_IMPS",
    "MODE_NEFT",
    "MODE_UPI",
    "GATEWAY_MINIMUM_PAYOUT",
    "GatewayDecision",
    "gateway_payable",
    "BELOW_GATEWAY_MINIMUM",
    "TDS_TAKES_ALL",
    "TDS_LEAVES_TOO_LITTLE",
]


def _money(name, value, allow_negative=False):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be int paise")
    if value < 0 and not allow_negative:
        raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class TdsResult:
    gross: int
    tds: int  # deducted from this payout
    net: int  # gross − tds, what is sent to the bank
    rate_bps: int
    section: str
    taxable_base: int  # gross the rate was applied to this time (0 below the threshold)
    crossed_now: bool  # this payout took the year over the threshold
    untaxed_after: int  # the year's untaxed gross after this payout (store it)
    shortfall_after: int  # TDS due but not yet deducted (store it)
    # NO_PAN_SECTION when ``rate_bps`` is section 206AA's (no PAN on file), else None
    higher_section: str | None = None


def over_threshold(fy_gross: int, rule: TdsRule) -> bool:
    """Whether a year's gross payouts are past the TDS threshold: from then on each payout
    deducts the rate (up to it, none)."""
    return fy_gross > rule.threshold


def rate_for_payee(rule: TdsRule, *, pan_on_file: bool) -> tuple[int, str | None]:
    """``(rate in basis points, why)`` a payout past the threshold deducts at: the rule's
    rate (why: None) while the payee has a PAN on file; without one, section 206AA's, the
    higher of the rule's rate and its no-PAN rate (why: ``NO_PAN_SECTION``)."""
    if pan_on_file:
        return rule.rate_bps, None
    return max(rule.rate_bps, rule.no_pan_rate_bps), NO_PAN_SECTION


def tds_for_payout(
    gross: int,
    fy_gross_paid_before: int,
    fy_untaxed_gross_before: int,
    policy_for_fy: TdsRule | Policy = DEFAULT_POLICY,
    *,
    fy: str | None = None,
    fy_tds_shortfall_before: int = 0,
    pan_on_file: bool = True,
) -> TdsResult:
    """TDS on one payout. ``policy_for_fy`` is the year's :class:`TdsRule`, or a
    :class:`Policy` together with ``fy`` (a label like "2026-27"). ``pan_on_file``: whether
    the payee has a PAN on file as the payout is made; without one, past the threshold,
    the rate is section 206AA's (:func:`rate_for_payee`) and the result says so. Below the
    threshold nothing is deducted, and the result keeps the rule's own rate."""
    _money("gross", gross)
    _money("fy_gross_paid_before", fy_gross_paid_before)
    _money("fy_untaxed_gross_before", fy_untaxed_gross_before)
    _money("fy_tds_shortfall_before", fy_tds_shortfall_before)
    if fy_untaxed_gross_before > fy_gross_paid_before:
        raise ValueError("untaxed gross cannot exceed the gross paid")
    if isinstance(policy_for_fy, Policy):
        if fy is None:
            raise ValueError("give the financial year label (fy=) with a Policy")
        rule = policy_for_fy.tds_rule_for(fy)
    else:
        rule = policy_for_fy
    cumulative = fy_gross_paid_before + gross
    if not over_threshold(cumulative, rule):
        return TdsResult(
            gross,
            0,
            gross,
            rule.rate_bps,
            rule.section,
            0,
            False,
            fy_untaxed_gross_before + gross,
            fy_tds_shortfall_before,
        )
    crossed_now = not over_threshold(fy_gross_paid_before, rule)
    rate, higher = rate_for_payee(rule, pan_on_file=pan_on_file)
    base = fy_untaxed_gross_before + gross
    due = apply_bps(base, rate) + fy_tds_shortfall_before
    tds = min(due, gross)
    return TdsResult(
        gross, tds, gross - tds, rate, rule.section, base, crossed_now, 0, due - tds, higher
    )


def payout_mode(
    amount: int, policy: Policy = DEFAULT_POLICY, *, fund_account_type: str = "bank_account"
) -> str:
    """IMPS up to and including the IMPS limit (₹5 lakh), NEFT above; a UPI VPA fund
    account always pays by UPI."""
    _money("amount", amount)
    if fund_account_type == "vpa":
        return MODE_UPI
    return MODE_IMPS if amount <= policy.imps_limit else MODE_NEFT


@dataclass(frozen=True)
class CycleDecision:
    pay: bool
    amount: int  # to pay out now
    carry_forward: int  # left on the payable for the next cycle
    message: str


def cycle_payable(
    balance: int, minimum: int | None = None, policy: Policy = DEFAULT_POLICY
) -> CycleDecision:
    """A WEEKLY/MONTHLY cycle pays the whole net payable only when it is at least the
    minimum (₹500); otherwise it carries forward. (INSTANT payouts, one per completed
    booking, do not apply the minimum.) A negative balance (penalties beyond earnings)
    pays nothing and carries forward as is."""
    _money("balance", balance, allow_negative=True)
    minimum = policy.payout_minimum if minimum is None else minimum
    _money("minimum", minimum)
    if balance >= minimum and balance > 0:
        return CycleDecision(True, balance, 0, f"Payout of {format_inr(balance)}")
    return CycleDecision(
        False,
        0,
        balance,
        f"Minimum payout threshold not met. Required: {format_inr(minimum)}, "
        f"Available: {format_inr(balance)}",
    )


# Why a payout is not sent to RazorpayX (``GatewayDecision.reason``).
BELOW_GATEWAY_MINIMUM = "below_gateway_minimum"  # the payable itself is under ₹1
TDS_TAKES_ALL = "tds_takes_all"  # nothing would be left after TDS
TDS_LEAVES_TOO_LITTLE = "tds_leaves_too_little"  # under ₹1 would be left after TDS


@dataclass(frozen=True)
class GatewayDecision:
    pay: bool
    gross: int
    tds: int
    net: int  # gross − tds, what would be sent
    reason: str | None  # why not (one of the constants above), None when it is sent
    message: str  # the reason in English (the run's skip list), "" when it is sent


def gateway_payable(gross: int, tds: int) -> GatewayDecision:
    """Whether a payout of ``gross`` less its ``tds`` is sent: RazorpayX pays nothing under
    ₹1 (``GATEWAY_MINIMUM_PAYOUT``), so a smaller net carries forward, for every kind of
    payout (INSTANT has no other minimum). The one rule for it: the payout follows it and
    the INSTANT earnings page says why from it (its own words, in the reader's language).
    A payable under ₹1 is too small whatever its TDS; a larger one is judged by its net."""
    _money("gross", gross)
    _money("tds", tds)
    if tds > gross:
        raise ValueError("tds cannot exceed the gross")
    net = gross - tds
    minimum = format_inr(GATEWAY_MINIMUM_PAYOUT)
    if gross < GATEWAY_MINIMUM_PAYOUT:
        reason = BELOW_GATEWAY_MINIMUM
        message = (
            f"{format_inr(gross)} is below the smallest payout RazorpayX makes ({minimum}); "
            "it carries forward."
        )
    elif net <= 0:
        reason = TDS_TAKES_ALL
        message = (
            f"TDS due ({format_inr(tds)}) takes the whole payable ({format_inr(gross)}); "
            "the balance carries forward until it covers the TDS."
        )
    elif net < GATEWAY_MINIMUM_PAYOUT:
        reason = TDS_LEAVES_TOO_LITTLE
        message = (
            f"{format_inr(net)} is below the smallest payout RazorpayX makes ({minimum}); "
            "it carries forward."
        )
    else:
        return GatewayDecision(True, gross, tds, net, None, "")
    return GatewayDecision(False, gross, tds, net, reason, message)


# One rule, said to the admin (English only) and to the provider on their own page (in
# their language): the same words but whose payouts. What later payouts deduct is said of
# the rule of the payout's day, the one it was deducted under: read after a rate change, a
# bare "later payouts deduct 10%" was false of today's (re-read finding).
MSG_CATCH_UP = (
    "TDS catch-up: this payout took the provider's gross payouts for FY %(fy)s over the"
    " %(threshold)s threshold, so %(rate)s of the year's untaxed gross so far (this payout"
    " included, or a shortfall carried from it) is deducted here (section %(section)s);"
    " under the rule of that day, each later payout deducts %(rate)s of its own gross."
)
MSG_CATCH_UP_YOURS = N_(
    "TDS catch-up: this payout took your gross payouts for FY %(fy)s over the"
    " %(threshold)s threshold, so %(rate)s of the year's untaxed gross so far (this payout"
    " included, or a shortfall carried from it) is deducted here (section %(section)s);"
    " under the rule of that day, each later payout deducts %(rate)s of its own gross."
)


# A catch-up deducted at section 206AA's rate: what later payouts deduct depends on the
# PAN, which the no-PAN note after it says (``no_pan_note``), so it ends at the deduction.
MSG_CATCH_UP_NO_PAN = (
    "TDS catch-up: this payout took the provider's gross payouts for FY %(fy)s over the"
    " %(threshold)s threshold, so %(rate)s of the year's untaxed gross so far (this payout"
    " included, or a shortfall carried from it) is deducted here (section %(section)s)."
)
MSG_CATCH_UP_NO_PAN_YOURS = N_(
    "TDS catch-up: this payout took your gross payouts for FY %(fy)s over the"
    " %(threshold)s threshold, so %(rate)s of the year's untaxed gross so far (this payout"
    " included, or a shortfall carried from it) is deducted here (section %(section)s)."
)


def catch_up_note(
    gross: int,
    tds: int,
    rule: TdsRule,
    financial_year: str,
    section: str | None = None,
    *,
    yours: bool = False,
    higher_section: str | None = None,
) -> Text | None:
    """Why a payout's TDS is more than the rate on its own gross: it is the payout that took
    the year's gross over the threshold, and deducts the rate on the year's untaxed gross
    so far, itself included (or a shortfall carried from such a payout). None otherwise.
    A payout page showed ₹5,627.50 TDS on ₹6,650 with no word why. ``section``: the one
    the payout was deducted under (stored with it), if the year's rule has changed since.
    ``yours``: said to the provider ("your gross payouts"), a ``Text`` their page
    translates; the admin's reads "the provider's". ``higher_section``: the payout was
    deducted at section 206AA's rate (``rule.rate_bps``): the note leaves what later
    payouts deduct to :func:`no_pan_note`."""
    if tds <= apply_bps(gross, rule.rate_bps):
        return None
    if higher_section:
        messages = (MSG_CATCH_UP_NO_PAN_YOURS, MSG_CATCH_UP_NO_PAN)
    else:
        messages = (MSG_CATCH_UP_YOURS, MSG_CATCH_UP)
    return Text(
        messages[0] if yours else messages[1],
        fy=financial_year,
        threshold=format_inr(rule.threshold),
        rate=f"{percent_text(rule.rate_bps)}%",
        section=section or rule.section,
    )


# Section 206AA, said to the admin (English) and to the provider (in their language): why
# the payout deducted more, and, to the provider, where they fix it (their bank page's PAN
# card) or that they have.
MSG_NO_PAN = (
    "Section 206AA: the provider had no PAN on file when this payout was made, so TDS was"
    " deducted at %(rate)s; with a PAN on file, payouts deduct %(pan_rate)s."
)
MSG_NO_PAN_YOURS = N_(
    "No PAN on file: TDS at %(rate)s (section 206AA). Add your PAN to have %(pan_rate)s"
    " deducted on later payouts."
)
MSG_NO_PAN_ENTERED_YOURS = N_(
    "No PAN was on file when this payout was made: TDS at %(rate)s (section 206AA). Your"
    " PAN is on file now: later payouts deduct %(pan_rate)s."
)
# Two notes of one payout (a catch-up at the no-PAN rate), each a sentence of its own.
MSG_TWO_NOTES = N_("%(first)s %(second)s")


def no_pan_note(
    rate_bps: int, pan_rate_bps: int, *, yours: bool = False, pan_now: bool = False
) -> Text:
    """Why a payout deducted at section 206AA's rate (``rate_bps``, stored with it) and
    what a PAN changes (``pan_rate_bps``: the rule's rate with a PAN, today's). To the
    provider (``yours``) "Add your PAN …" while none is on file, or, once one is
    (``pan_now``), that later payouts deduct the lower rate; nothing deducted changes."""
    rates = {"rate": f"{percent_text(rate_bps)}%", "pan_rate": f"{percent_text(pan_rate_bps)}%"}
    if not yours:
        return Text(MSG_NO_PAN, **rates)
    return Text(MSG_NO_PAN_ENTERED_YOURS if pan_now else MSG_NO_PAN_YOURS, **rates)


def join_notes(*notes: Text | None) -> Text | None:
    """The notes given (None skipped) as one ``Text``, each said in the reader's language;
    None when there is none."""
    present = [note for note in notes if note]
    if not present:
        return None
    joined = present[0]
    for note in present[1:]:
        joined = Text(MSG_TWO_NOTES, first=joined, second=note)
    return joined
