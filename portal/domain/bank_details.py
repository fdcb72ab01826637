"""What is kept of a provider's bank account or UPI id (docs/payouts.md, docs/privacy.md):
the IFSC, the account number's last four digits, the UPI id masked. The full number and
UPI id are sent to RazorpayX and never stored. One masking for every place that keeps
them: the fund account's row (``payouts.fund_accounts``), the stored RazorpayX
webhooks, which echo the fund account (``gateway.scrub``), and RazorpayX's words kept in
the audit and alerts, which may repeat them (``masked_in_text``)."""

import re

MASK = "•"


def account_last4(number):
    """``"50100012345678" -> "5678"``: all that is kept of an account number."""
    return str(number)[-4:]


def mask_account_number(number):
    """``"50100012345678" -> "••••5678"``, as the pages show it; the same for a number
    masked already, so masking twice changes nothing."""
    return MASK * 4 + account_last4(number)


def mask_vpa_user(user):
    """The part of a UPI id before the ``@``: its first two characters, the rest hidden
    (as many bullets as characters, at least one)."""
    return user[:2] + MASK * max(len(user) - 2, 1)


def mask_vpa(vpa):
    """``"asharao@okhdfc" -> "as•••••@okhdfc"``; a masked id stays as it is."""
    user, _, handle = vpa.partition("@")
    return f"{mask_vpa_user(user)}@{handle}"


# What in a gateway's words looks like an account number (9 to 18 digits, as the form
# takes: ``payouts.fund_accounts.ACCOUNT_RE``) or a UPI id (as ``VPA_RE``), wherever it
# stands: masked even when it is not what was sent (RazorpayX may echo a number with
# its own formatting, and a payout's failure names an account the portal has only
# masked). A 9-digit UTR or a phone number is masked too: nothing the clinic needs.
ACCOUNT_NUMBER_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{9,18}(?![0-9])")
VPA_IN_TEXT = re.compile(r"(?<![A-Za-z0-9.\-_])[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}(?![A-Za-z])")


def masked_in_text(text, *, numbers=(), vpas=()):
    """Gateway text (RazorpayX's description of a refusal or a failure) as it may be
    kept in the audit, an alert or a row (review rv_audit: "Invalid account number
    50100012345678" was kept as it came): each account number in ``numbers`` and UPI id
    in ``vpas`` (what was sent) masked as the pages show it, then anything else shaped
    like one. None stays None."""
    if text is None:
        return None
    text = str(text)
    for number in filter(None, numbers):
        text = text.replace(str(number), mask_account_number(number))
    for vpa in filter(None, vpas):  # a UPI id is matched whatever its letters' case
        text = re.sub(re.escape(vpa), mask_vpa(vpa), text, flags=re.IGNORECASE)
    text = VPA_IN_TEXT.sub(lambda found: mask_vpa(found.group(0)), text)
    return ACCOUNT_NUMBER_IN_TEXT.sub(lambda found: mask_account_number(found.group(0)), text)
