"""A failed refund settled against refunds Razorpay made of its payment outside the portal
(on its dashboard): how much of it they already gave back, and what is still owed. Pure.

The payment took in ``captured``; our refunds of it still standing (``ours``: the failed
one among them, any other failed or sent to the wallet, and parts settled before) plus
what the dashboard gave back beyond any earlier settlement (``outside``) may not exceed it.
The excess is the part of the failed refund the dashboard already paid: closed, not paid
again. The rest is still owed and goes to the wallet."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Settlement:
    amount: int  # the failed refund
    parts: tuple[tuple[str, int], ...]  # (Razorpay refund id, paise it covers), oldest first

    @property
    def covered(self):
        """Paise of the refund the dashboard refunds already gave back."""
        return sum(part for _id, part in self.parts)

    @property
    def to_wallet(self):
        """Paise still owed: the wallet's."""
        return self.amount - self.covered


def settle(amount, captured, ours, outside):
    """How a failed refund of ``amount`` paise is settled: ``captured`` what its payment
    took in, ``ours`` our refunds of it still standing (this one included), ``outside``
    [(Razorpay refund id, paise not yet counted by a settlement)] made outside the portal,
    oldest first. The excess over ``captured`` is covered, up to ``amount``, from the
    oldest outside refund on; a settlement covering nothing when there is no excess."""
    excess = max(0, sum(paise for _id, paise in outside) + ours - captured)
    left, parts = min(amount, excess), []
    for refund_id, paise in outside:
        if left <= 0:
            break
        part = min(paise, left)
        if part > 0:
            parts.append((refund_id, part))
            left -= part
    return Settlement(amount, tuple(parts))
