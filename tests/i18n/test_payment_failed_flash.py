"""Back from the checkout unpaid, the visit page says why in one sentence that does not say
the same thing twice, in Hindi or in English.

Review finding: after "Fail payment" a Hindi reader's visit page said "भुगतान पूरा नहीं हुआ:
भुगतान पूरा नहीं हुआ" ("Payment not completed: Payment not completed"): the flash
"Payment not completed: %(reason)s" got ``MSG_NOT_PAID`` as its reason, and the catalogue
gave both the same words; in English it read "Payment not completed: The payment did not
go through"."""

import html as htmlmod
import re
from urllib.parse import urlsplit

import pytest
from flask_babel import force_locale, gettext

from portal.booking import checkout, errors, reschedule_payment
from tests.web.booking.helpers import hold, pay_fields, pay_on_sandbox

FLASH = re.compile(r'<p class="flash flash-error" role="status">([^<]*)</p>')


def _says_it_once(message):
    head, _, reason = message.partition(":")
    head, reason = head.strip(), reason.strip()
    assert head and reason, message
    assert head.lower() not in reason.lower() and reason.lower() not in head.lower(), message


@pytest.mark.parametrize("language", ["en", "hi"])
def test_the_failed_payment_flash_says_it_once(app, client, login, world, gateway, language):
    visit_id, _ = hold(app, world)
    login(world.patient)
    client.post("/language", data={"language": language, "next": "/"})
    paying = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, ""))
    assert paying.status_code == 303 and "/sandbox/checkout/" in paying.location
    back = urlsplit(pay_on_sandbox(client, paying.location, outcome="failure"))
    assert client.get(back.path, query_string=back.query).status_code == 303
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    [message] = [htmlmod.unescape(m) for m in FLASH.findall(page)]
    _says_it_once(message)
    if language == "en":  # a cause, not "The payment did not go through" again
        # Then what is left of the hold (tests/web/booking/test_failed_payment_message.py).
        assert message.startswith(
            "Payment not completed: It was declined or cancelled at the checkout. "
            "Your times are held until "
        )


@pytest.mark.parametrize("language", ["en", "hi"])
@pytest.mark.parametrize("reason", [errors.MSG_NOT_PAID, errors.MSG_BAD_SIGNATURE])
def test_each_reason_completes_the_sentence_in_each_language(app, language, reason):
    """Both callbacks (a visit's checkout, a reschedule fee's) raise the same fixed reasons."""
    assert checkout.MSG_NOT_PAID == reschedule_payment.MSG_NOT_PAID == errors.MSG_NOT_PAID
    with app.test_request_context("/"), force_locale(language):
        _says_it_once(gettext("Payment not completed: %(reason)s", reason=gettext(reason)))
