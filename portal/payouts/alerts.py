"""Admin alerts raised by the payout engine.

``raise_payout_alert`` calls ``portal.notify.alerts.raise_alert`` (every active admin gets
a notice; HIGH ones also a mail) and always writes an audit row ``payout.alert`` too, so
the alert is on record even where the notification capability is not installed."""
import logging

from portal.audit.service import record

log = logging.getLogger("portal.payouts")

HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"


def _notify_raise_alert():
    try:
        from portal.notify.alerts import raise_alert
    except ImportError:
        return None
    return raise_alert


def raise_payout_alert(severity, title, message, *, payout=None, kind="PAYOUT_FAILED",
                       actor=None):
    details = {"severity": severity, "title": title, "message": message, "kind": kind}
    if payout is not None:
        details.update(payout_id=payout.id, provider_id=payout.provider_id)
    record(actor, "payout.alert", "payout" if payout is not None else "payouts",
           payout.id if payout is not None else None, after=details)
    log.warning("payout alert %s: %s — %s", severity, title, message)
    raise_alert = _notify_raise_alert()
    if raise_alert is None:
        return None
    return raise_alert(kind=kind, title=title, body=message,
                       link=f"/admin/payouts/{payout.id}" if payout is not None else None,
                       severity=severity,
                       dedupe_key=f"{kind}:{payout.id}" if payout is not None else None)
