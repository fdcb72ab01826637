"""``flask transactions rebuild``: write the console's row of every money record again
(idempotent), e.g. for records written before the read table existed."""

import click
from flask.cli import AppGroup

from portal.db import unit_of_work

from . import projectors  # noqa: F401  (registers the projectors)
from .projection import rebuild as rebuild_rows

transactions_cli = AppGroup("transactions", help="The transactions console's read table.")


@transactions_cli.command("rebuild")
def rebuild():
    with unit_of_work():
        written = rebuild_rows()
    click.echo(f"{written} movement rows written")
