"""The portal's history tables, which no statement of its own may rewrite or remove: the
audit log and the ledger (docs/security.md, "Append-only history"). ``append_only(model)``
sets three guards on a model's table:

- a unit-of-work flush that would change or delete a row is refused (mapper events);
- a bulk UPDATE or DELETE of the table through the session is refused (one
  ``do_orm_execute`` listener for every guarded table), but an UPDATE carrying the
  table's own execution option (the audit redaction's), if it has one;
- on PostgreSQL the trigger function ``append_only()`` refuses every DELETE and TRUNCATE,
  and every UPDATE that changes a column but those the trigger names (its arguments),
  whoever sends it."""

from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.db import after_create_on_postgresql


class AppendOnly(RuntimeError):
    """A change or removal of a history row was asked for: a bug, never a user's error."""

    def __init__(self, history, what="a change", instead=""):
        super().__init__(f"the {history} is append-only: {what} of an entry refused{instead}")


@dataclass(frozen=True)
class _History:
    name: str  # as the error says it: "audit log", "ledger"
    instead: str  # what to do instead, for the error
    update_option: str | None  # the execution option of the one bulk UPDATE allowed


_GUARDED: dict[str, _History] = {}  # table name -> its history


def append_only(model, history, *, instead="", update_option=None, may_change=()):
    """Guard ``model``'s table (see the module). ``may_change``: the columns an UPDATE
    may rewrite on PostgreSQL (the audit redaction's before/after), with
    ``update_option`` marking that UPDATE for the session's guard."""
    table = model.__table__
    guarded = _History(history, instead, update_option)
    _GUARDED[table.name] = guarded

    def refuse(mapper, connection, target):
        raise AppendOnly(history, instead=instead)

    event.listen(model, "before_update", refuse)
    event.listen(model, "before_delete", refuse)
    after_create_on_postgresql(table, _ddl(table.name, may_change))


@event.listens_for(Session, "do_orm_execute")
def _no_bulk_rewrite(state):
    """The mapper events fire on a flush only: a bulk ``update(Model)`` or ``delete(Model)``
    (or of its table, or the 1.x ``Query.update``/``delete``) through the session passes
    them by."""
    if not (state.is_update or state.is_delete):
        return
    guarded = _GUARDED.get(getattr(getattr(state.statement, "table", None), "name", None))
    if guarded is None:
        return
    if (
        state.is_update
        and guarded.update_option
        and state.execution_options.get(guarded.update_option)
    ):
        return
    what = "an UPDATE" if state.is_update else "a DELETE"
    raise AppendOnly(guarded.name, what, guarded.instead)


# PostgreSQL, whatever sends the statement (the ORM, a Core connection, psql). One way past,
# for DELETE and TRUNCATE only: the setting ``portal.emptying_tables``, which the tests'
# reset alone sets (tests/plugin.py; no other code of the portal names it:
# tests/reports/test_audit_append_only.py). An UPDATE passes when all it changes is among
# the trigger's arguments (every other column, one added later too, compared as the row's
# JSON); a trigger with none refuses every UPDATE. It guards against the portal's own
# statements, not against the tables' owner, who may drop the trigger (docs/security.md).
# The migrations aud1t0nly0001 and ledg0nly0001 write the same.
FUNCTION_DDL = """
CREATE OR REPLACE FUNCTION append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The tests' reset alone (tests/plugin.py: empty_tables) sets this, in its transaction.
    IF TG_OP IN ('DELETE', 'TRUNCATE')
        AND current_setting('portal.emptying_tables', true) = 'on'
    THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_NARGS > 0 THEN
        IF to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING HINT = 'A correction is a new row (docs/security.md: append-only history).';
END
$$
"""


def _ddl(table, may_change):
    """The function, then the table's two triggers: each row's UPDATE or DELETE, and
    TRUNCATE, which row triggers do not see."""
    columns = ", ".join(f"'{column}'" for column in may_change)
    return (
        FUNCTION_DDL,
        f"CREATE TRIGGER tg_{table}_append_only BEFORE UPDATE OR DELETE ON {table}\n"
        f"FOR EACH ROW EXECUTE FUNCTION append_only({columns})",
        f"CREATE TRIGGER tg_{table}_not_truncated BEFORE TRUNCATE ON {table}\n"
        "FOR EACH STATEMENT EXECUTE FUNCTION append_only()",
    )
