"""What a signed-in request reads with its user, in the one statement that loads it.

Almost every signed-in page needs, besides the user: the catalog's stamp (whether the
process's catalog cache is current), the policy's stamp (prices and rules) and, on a full
page, the bell's unread count. Each was a statement of its own; read as columns of the
user's row they cost the request one round trip in all. Each is then kept for the request
exactly as if read on its own, and a write that changes one drops it (a catalog or policy
edit, a notice written or read), so the request reads that one again.

A page may ask for more of the same kind (``reads_with_user``): the wallet's balance on
the pages that show it is a column of the same statement, not one of its own."""

from flask import current_app, has_request_context, request

from portal.accounts.models import User
from portal.accounts.service import session_user
from portal.catalog import cache as catalog_cache
from portal.notify import center
from portal.policies import store as policy_store
from portal.wallet import queries as wallet_queries

COLUMNS = (catalog_cache.STAMP, policy_store.TOKEN, center.unread_column(User.id))

# What a page may read with the user (``reads_with_user``): a column of the user's row and
# what keeps its value for the request, ``keep(user id, value)``.
WALLET_BALANCE = (wallet_queries.balance_column(User.id), wallet_queries.keep_balance)


def reads_with_user(*reads):
    """Mark a view whose page shows these reads of the signed-in user (``WALLET_BALANCE``
    …): they come with the user's statement, and the page's own reads of them find them
    kept. It marks the view function itself (routing finds it by the request's endpoint)."""

    def mark(view):
        view.reads_with_user = reads
        return view

    return mark


def _page_reads():
    if not has_request_context() or request.endpoint is None:
        return ()
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "reads_with_user", ())


def load_user(session_id):
    """The session's user (``accounts.service.session_user``), with the request's stamps,
    unread count and what its page reads with the user (``reads_with_user``) kept."""
    extra = _page_reads()
    columns = COLUMNS + tuple(column for column, _ in extra) if extra else COLUMNS
    user, values = session_user(session_id, columns)
    if user is not None:
        catalog_stamp, policy_token, unread, *more = values
        catalog_cache.prime(catalog_stamp)
        policy_store.prime(policy_token)
        center.keep_unread(user.id, unread)
        for (_, keep), value in zip(extra, more, strict=True):
            keep(user.id, value)
    return user
