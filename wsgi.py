"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

import gc

from portal import create_app

app = create_app()
# What start-up made (modules, the app, SQLAlchemy's mappings: about 220,000 objects)
# lives as long as the process: moved out of the collector's sight, so a full collection
# walks only what requests made since, not all of it again (about 0.2 ms a request).
# Start-up's garbage is collected first, so none of it is kept for good.
gc.collect()
gc.freeze()
