"""What a closing account and its family have been called, and what replaces each name
in what was sent to others about them (docs/privacy.md, closing an account, step 3).

A notice or mail names the person as they were called when it was sent; a child renamed
since, or an e-mail changed, would otherwise keep the old one there. So besides the names
now: every name and e-mail the audit rows about the account and each family member
recorded (a dependent's ``dependent.add``, both sides of each ``dependent.update``), and
the names their invoices were issued with (``billed_to_name``, ``billed_for_name``). Read
before the closure changes or redacts anything."""

from portal.accounts import queries as accounts_queries
from portal.accounts.service import CLOSED_DEPENDENT_NAME, CLOSED_EMAIL, CLOSED_NAME
from portal.audit.service import recorded_values
from portal.booking import queries as booking_queries


def replacements(user):
    """``(old, new)`` pairs for ``notify.closure.erase_about_them``: the patient's names →
    "Closed account #<id>", their e-mails → the closed address, each family member's
    names → "Family member #<id>". Each old value appears once: the names now first (a
    name one bears now and another bore before goes to the one bearing it now); a name
    two bore before goes to one of them (either way it is gone). Only the family members
    on the list now: one removed had no visit (a visit keeps its dependent), so nothing
    about them was sent."""
    closed_name = CLOSED_NAME.format(id=user.id)
    closed_email = CLOSED_EMAIL.format(id=user.id)
    family = accounts_queries.dependents_of(user.id)
    placeholders = {d.id: CLOSED_DEPENDENT_NAME.format(id=d.id) for d in family}
    pairs = [(user.name, closed_name), (user.email, closed_email)]
    pairs += [(d.name, placeholders[d.id]) for d in family]
    objects = [("user", user.id), *(("dependent", i) for i in placeholders)]
    names = recorded_values(objects, "name")
    emails = recorded_values(objects, "email")
    pairs += [(n, closed_name) for n in names.get(("user", str(user.id)), ())]
    pairs += [(e, closed_email) for e in emails.get(("user", str(user.id)), ())]
    for dependent_id, placeholder in placeholders.items():
        pairs += [(n, placeholder) for n in names.get(("dependent", str(dependent_id)), ())]
    for dependent_id, to_name, for_name in booking_queries.invoiced_names(user.id):
        pairs.append((to_name, closed_name))
        if dependent_id is None:
            pairs.append((for_name, closed_name))
        else:
            pairs.append((for_name, CLOSED_DEPENDENT_NAME.format(id=dependent_id)))
    first = {}
    for old, new in pairs:
        if old and old not in first:
            first[old] = new
    return list(first.items())
