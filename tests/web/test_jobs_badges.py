"""The jobs page's badges as plain functions (``portal.web.filters``): an outbox item's
attempts, and a delivery's status through the one status → class table."""

from portal.notify.models import DeliveryStatus
from portal.web.filters import attempts_badge, badge, status_badge


def test_attempts_none_plain_some_a_warning_all_of_them_bad():
    assert attempts_badge(0, 8) == "0"
    assert attempts_badge(3, 8) == '<span class="badge warn">3</span>'
    assert attempts_badge(8, 8) == '<span class="badge bad">8</span>'
    assert attempts_badge(9, 8) == '<span class="badge bad">9</span>'


def test_a_deliverys_status_failing_a_warning_given_up_bad_withdrawn_plain():
    assert status_badge(DeliveryStatus.RETRYING) == "warn"
    assert status_badge(DeliveryStatus.QUEUED) == "warn"
    assert status_badge(DeliveryStatus.FAILED) == "bad"
    assert status_badge(DeliveryStatus.WITHDRAWN) == ""
    assert badge(DeliveryStatus.FAILED) == '<span class="badge bad">Failed</span>'
    assert badge(DeliveryStatus.WITHDRAWN) == '<span class="badge ">Withdrawn</span>'
