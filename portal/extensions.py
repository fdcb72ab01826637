"""Extension objects, created unbound and initialised in create_app()."""
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_rq import RQ
from flask_wtf.csrf import CSRFProtect

from portal.db import db  # noqa: F401  (defined beside the unit of work)

migrate = Migrate(compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
rq = RQ()
