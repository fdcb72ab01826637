"""``flask settlements fetch``: read Razorpay's settlements now (what the daily job reads;
flagging what left its window incomplete stays the job's, ``tasks.fetch_settlements``).
``flask settlements post-adjustments``: post the transfers and adjustments of settlements
stored complete before they were posted (once, after the upgrade)."""

from datetime import timedelta

import click
from flask.cli import AppGroup

from portal.db import utcnow

from .ingest import SettlementError, ingest, post_stored_adjustments

settlements_cli = AppGroup("settlements", help="Razorpay settlements.")


@settlements_cli.command("fetch")
@click.option("--days", type=click.IntRange(1, 366), default=None, help="Days back to read.")
def fetch(days):
    """Store and post every settlement of the last days not stored yet."""
    until = utcnow()
    since = until - timedelta(days=days) if days else None
    try:
        result = ingest(since=since, until=until)
    except SettlementError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{result.new} new settlement(s) stored ({result.seen} listed by Razorpay)")
    for settlement_id, why in result.refused:
        click.echo(f"settlement {settlement_id} not stored: {why}", err=True)


@settlements_cli.command("post-adjustments")
def post_adjustments():
    """Post the transfers and adjustments of complete settlements not posted yet."""
    posted = post_stored_adjustments()
    click.echo(f"{len(posted)} settlement(s) had their transfers and adjustments posted")
    for settlement_id in posted:
        click.echo(f"  {settlement_id}")
