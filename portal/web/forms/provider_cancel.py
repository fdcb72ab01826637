"""The provider's cancel form with what its page stated (``refunds.shown``): the
appointment's start, the patient's refund and the penalty, sent back hidden and checked at
the click; the form of ``forms.refunds`` carried only the reason."""

from wtforms import HiddenField
from wtforms.validators import Length

from portal.domain.ids import is_digits
from portal.refunds.shown import Shown
from portal.web.forms.refunds import ProviderCancelForm


def _number(field):
    text = (field.data or "").strip()
    return int(text) if is_digits(text) else None


class ShownProviderCancelForm(ProviderCancelForm):
    shown_start = HiddenField(validators=[Length(max=15)])
    shown_refund = HiddenField(validators=[Length(max=15)])
    shown_penalty = HiddenField(validators=[Length(max=15)])

    def fill_shown(self, shown):
        """Carry ``shown`` (what the page states now) in the hidden fields."""
        self.shown_start.data = str(shown.start)
        self.shown_refund.data = str(shown.refund)
        self.shown_penalty.data = str(shown.penalty)
        return self

    def shown(self):
        """What the page the form was on stated (``refunds.shown.Shown``; a field not sent
        or not a number is None, which ``cancel_as_provider`` refuses: asked again)."""
        return Shown(
            _number(self.shown_start), _number(self.shown_refund), _number(self.shown_penalty)
        )
