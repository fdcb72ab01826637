"""The app a test's `flask rq worker` subprocess loads: the portal with this capability's
modules imported (create_app imports them itself once they are in CAPABILITIES)."""

import portal.notify.channels  # noqa: F401
import portal.notify.mail  # noqa: F401
import portal.notify.reminders  # noqa: F401
import portal.notify.sweeps  # noqa: F401
import portal.notify.tasks  # noqa: F401
from portal import create_app

app = create_app()
