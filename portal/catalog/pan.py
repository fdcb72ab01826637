"""A doctor's or a lab's PAN (``providers.pan``): the deductee's, under which the clinic
reports the TDS on their payouts in its statement (Form 26Q), and the Income Tax
Department credits that tax to them (their Form 26AS). Its rule is
``domain.tax_ids.clean_pan`` (five letters, four digits and a letter, the fourth a holder
type); here is who may set it and how the audit log holds it (docs/payouts.md, "PAN";
the decision: docs/decisions.md).

* An administrator, on the provider's form (``providers.create_provider`` and
  ``update_provider``, field ``pan``): sets it, corrects it, or clears it (blank), but
  never clears one TDS was deducted under (:func:`refuse_clearing`: the TDS records keep
  it, docs/privacy.md).
* The provider themselves, once, while none is on file (:func:`enter_own_pan`, their bank
  page): the deductee furnishes it. A PAN on file only the clinic changes: a wrong one
  sends their TDS credit to someone else's PAN.

The audit log is append-only, so it never holds a PAN in full: an entry shows it masked
(``ABCPK••••L``, as the provider's pages do)."""

import sqlalchemy as sa

from portal import events
from portal.accounts.models import PROVIDER
from portal.audit.service import record
from portal.catalog import time_lock
from portal.catalog.checks import (
    FORM,
    NotFound,
    ValidationError,
    bump_versions,
    changing,
    lock_for_edit,
    raise_errors,
)
from portal.catalog.models import Provider
from portal.domain import tax_ids
from portal.domain.tax_ids import clean_pan, mask_pan
from portal.extensions import db
from portal.i18n import N_

MSG_ON_FILE = N_("A PAN is already on file. If it is wrong, ask the clinic to correct it.")
MSG_ENTER = N_("Enter your PAN.")
MSG_DIFFERENT = N_("The two PANs are not the same: type it again.")


def check_pan(typed, on_file, errors):
    """The PAN to store for what a form sent (None: none on file); a message under
    ``errors["pan"]`` when it is not a PAN. What is already on file, sent back unchanged
    by a form filled with it, is kept as it is without being checked again."""
    if tax_ids.normal_pan(typed) == (on_file or None):
        return on_file
    try:
        return clean_pan(typed)
    except ValueError as exc:
        errors["pan"] = exc.args[0]
        return on_file


def refuse_clearing(provider_id, pan_on_file, pan, errors):
    """A message under ``errors["pan"]`` when the form clears a PAN on file that a receiver
    of ``provider_pan_clearing`` keeps (the payouts: TDS was deducted under it)."""
    if pan_on_file and pan is None and "pan" not in errors:
        for _receiver, message in events.provider_pan_clearing.send(
            "catalog", provider_id=provider_id
        ):
            if message:
                errors["pan"] = message
                return


def audited(before, after):
    """An audit entry's before and after with the PAN masked. A correction of its digits
    alone masks the same on both sides: ``pan_changed`` in the after says it changed."""
    changed = "pan" in before and "pan" in after and before["pan"] != after["pan"]
    before = {**before, "pan": mask_pan(before["pan"])} if "pan" in before else before
    after = {**after, "pan": mask_pan(after["pan"])} if "pan" in after else after
    return before, ({**after, "pan_changed": True} if changed else after)


def wait_for_payouts(provider_id, pan):
    """What every write of a provider's PAN (``pan``, as typed) calls first of all in its
    unit of work, before the catalog's locks (``changing(before=...)``; ``catalog.checks``,
    "Lock order", step 0): the payouts of the profile, or of its PAN on file or ``pan``,
    being made commit first, and one started meanwhile waits and reads the new PAN
    (``events.provider_pan_writing``: the payouts' locks; TDS is counted per PAN, and a
    payout locks by the PAN it read). A new profile has no payouts: not called."""
    events.provider_pan_writing.send("catalog", provider_id=provider_id, pan=pan)


def enter_own_pan(actor, pan, confirm):
    """A provider puts their own PAN on file, typed twice; refused once one is on file
    (``MSG_ON_FILE``: the clinic corrects it). Only ever the actor's own profile: no
    other provider is named. After the payouts being made (:func:`wait_for_payouts`),
    read under the lock of an admin's edit (the catalog's, then the row's:
    ``catalog.checks``, "Lock order"), so of this and an admin's save at once the second
    sees the first; raises the provider's ``version``, so an admin's form opened before
    does not clear it."""
    provider_id = None
    if getattr(actor, "role", None) == PROVIDER:
        provider_id = db.session.scalar(sa.select(Provider.id).where(Provider.user_id == actor.id))
    if provider_id is None:
        raise NotFound("provider")
    with time_lock.serialized(), changing(before=lambda: wait_for_payouts(provider_id, pan)):
        provider = lock_for_edit(Provider, provider_id, "provider")
        if provider.pan:
            raise ValidationError({FORM: MSG_ON_FILE})
        errors = {}
        typed = check_pan(pan, None, errors)
        if typed is None and not errors:
            errors["pan"] = MSG_ENTER
        elif typed and tax_ids.normal_pan(confirm) != typed:
            errors["confirm_pan"] = MSG_DIFFERENT
        raise_errors(errors)
        provider.pan = typed
        bump_versions([provider])
        db.session.flush()
        before, after = audited({"pan": None}, {"pan": typed})
        record(actor, "provider.pan_entered", "provider", provider.id, before=before, after=after)
        return provider
