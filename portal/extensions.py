"""Extension objects, created unbound and initialised in create_app()."""

from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from portal.db import db  # noqa: F401  (defined beside the unit of work)
from portal.worker import AppRQ

migrate = Migrate(compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# Flask-RQ's queues, cron and CLI, with a worker that keeps the loaded app (portal.worker).
rq = AppRQ()
