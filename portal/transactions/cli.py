"""``flask transactions rebuild``: write the console's row of every money record again
(idempotent, and safe while the portal runs), e.g. for records written before the read
table existed."""

import click
from flask.cli import AppGroup

from . import projectors  # noqa: F401  (registers the projectors)
from .projection import rebuild as rebuild_rows

transactions_cli = AppGroup("transactions", help="The transactions console's read table.")


@transactions_cli.command("rebuild")
def rebuild():
    # Each batch commits on its own (safe while the portal runs: projection.rebuild).
    written = rebuild_rows()
    click.echo(f"{written} movement rows projected")
