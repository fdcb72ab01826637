"""One queue of everything that needs a second administrator (refund overrides and
further refunds, wallet adjustments, …): each kind is an :class:`ApprovalSource`."""
