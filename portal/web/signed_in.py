"""What a signed-in request reads with its user, in the one statement that loads it.

Almost every signed-in page needs, besides the user: the catalog's stamp (whether the
process's catalog cache is current), the policy's stamp (prices and rules) and, on a full
page, the bell's unread count. Each was a statement of its own; read as columns of the
user's row they cost the request one round trip in all. Each is then kept for the request
exactly as if read on its own, and a write that changes one drops it (a catalog or policy
edit, a notice written or read), so the request reads that one again."""

from portal.accounts.models import User
from portal.accounts.service import session_user
from portal.catalog import cache as catalog_cache
from portal.notify import center
from portal.policies import store as policy_store

COLUMNS = (catalog_cache.STAMP, policy_store.TOKEN, center.unread_column(User.id))


def load_user(session_id):
    """The session's user (``accounts.service.session_user``), with the request's stamps
    and unread count kept."""
    user, values = session_user(session_id, COLUMNS)
    if user is not None:
        catalog_stamp, policy_token, unread = values
        catalog_cache.prime(catalog_stamp)
        policy_store.prime(policy_token)
        center.keep_unread(user.id, unread)
    return user
