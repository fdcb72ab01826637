"""A bare Flask view, served by ``tests.load.bench_http`` under the portal's gunicorn
settings: the floor the stack itself sets (``gunicorn -w 4 tests.load.bare_app:app``)."""

from flask import Flask

app = Flask(__name__)


@app.get("/bare")
def bare():
    return "ok"
