"""What is kept of a provider's bank account or UPI id (docs/payouts.md, docs/privacy.md):
the IFSC, the account number's last four digits, the UPI id masked. The full number and
UPI id are sent to RazorpayX and never stored. One masking for every place that keeps
them: the fund account's row (``payouts.fund_accounts``) and the stored RazorpayX
webhooks, which echo the fund account (``gateway.scrub``)."""

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
