"""Flask commands: serve the embedded mode, tick the schedule, load demo data."""

import click
from flask import current_app
from flask.cli import AppGroup
from werkzeug.serving import WSGIRequestHandler, run_simple

from portal.gateway import get_payin

jobs_cli = AppGroup("jobs", help="Background work.")


@jobs_cli.command("tick")
@click.option("--only", help="Run just this periodic job.")
def tick(only):
    """Run every periodic job once (what the scheduler does on its clock). Each runs
    whatever the others do, as under the scheduler; any failure makes the exit status 1."""
    from portal import jobs

    names = [n for n in sorted(jobs.PERIODIC) if not only or n == only]
    if not names:
        raise click.BadParameter(f"no periodic job {only!r}", param_hint="--only")
    failed = []
    for name in names:
        try:
            result = jobs.run_periodic(name)  # rolls back and logs its failure
        except Exception as exc:  # noqa: BLE001 (reported, then the next job)
            failed.append(name)
            click.echo(f"{name}: failed: {exc!r}", err=True)
            continue
        click.echo(f"{name}: {result}")
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(names)} periodic jobs failed: {', '.join(failed)}"
        )


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, but its Server header names no software or version (it would
    say "Werkzeug/3.x Python/3.11": something to look up for an attacker)."""

    def version_string(self):
        return "clinic-portal"


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host, port):
    """Run the embedded mode: web, in-process jobs and scheduler, sandbox gateway."""
    from portal import jobs

    app = current_app._get_current_object()
    if app.config.get("PUBLIC_URL_FOLLOWS_SERVER"):
        from portal.gateway.sandbox import follow_public_url

        follow_public_url(app, server_url(host, port))
    app.config["JOBS_INLINE_THREAD"] = True
    if app.config.get("PERIODIC_INLINE"):
        jobs.start_inline_ticker(app)
    click.echo(f"Clinic Portal on http://{host}:{port}/")
    # Threaded: the portal calls the sandbox mounted in this same server over HTTP.
    run_simple(
        host, port, app, threaded=True, use_reloader=False, request_handler=QuietRequestHandler
    )


def server_url(host, port):
    """The URL a browser on this machine reaches ``flask serve --host H --port N`` at."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def init_app(app):
    app.cli.add_command(jobs_cli)
    app.cli.add_command(serve)
    app.cli.add_command(demo_cli)
    from portal.ledger.cli import POSITION_SOURCE, ledger_cli

    app.cli.add_command(ledger_cli)
    from portal.settlements.cli import settlements_cli
    from portal.transactions.cli import transactions_cli

    app.cli.add_command(settlements_cli)
    app.cli.add_command(transactions_cli)
    app.extensions[POSITION_SOURCE] = _gateway_position


def _gateway_position():
    """What the gateway holds for us, for ``flask ledger check``: its lists' totals and
    settlements by id, and each complete settlement's transfers and adjustments as its
    recon rows (read from the gateway at ingest) have them."""
    from portal.settlements.queries import recon_adjustments

    return {**get_payin().account_position(), "adjustments": recon_adjustments()}


demo_cli = AppGroup("demo", help="Demo data for the embedded mode.")


@demo_cli.command("load")
@click.option(
    "--force",
    is_flag=True,
    help="Load it outside the embedded mode too (a staging database, never a clinic's).",
)
def demo_load(force):
    """Load the demo clinics, providers, availability and logins (safe to run twice)."""
    if not current_app.config.get("EMBEDDED") and not force:
        # Its logins' passwords are printed in the README: on a clinic's database they
        # would be a known admin password.
        raise click.ClickException(
            "The demo data is for the embedded mode (its logins' passwords are public); "
            "this is a DATABASE_URL install. Use --force only on a staging database."
        )
    from portal.catalog.demo import load_demo
    from portal.demo.history import load_history
    from portal.wallet.demo import load_demo as load_wallet_demo

    load_demo(echo=click.echo)
    load_history(echo=click.echo)  # three months of visits, refunds, payouts (issue #16)
    # After the history: its adjustment is made today, on the wallet the history left (made
    # before it, it was "₹0 → ₹500" in the admin's list and after three months of the
    # history's dated movements on the patient's wallet page).
    load_wallet_demo(echo=click.echo)
    # Reconciliation's demo lives above the catalog (it books and pays), so it is called here.
    from portal.reconcile.demo import load as load_reconciliation_demo

    load_reconciliation_demo(echo=click.echo)
