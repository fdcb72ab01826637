"""``flask ledger …`` commands. The app registers ``ledger_cli`` (an AppGroup)."""

import click
from flask import current_app
from flask.cli import AppGroup

from portal.domain.rates import format_inr
from portal.ledger.check import verify_gateway_clearing, verify_ledger
from portal.ledger.service import balance

ledger_cli = AppGroup("ledger", help="The double-entry ledger.")


# The gateway sits above the ledger, so whoever wires the app registers how to ask it
# (``portal.cli``): a callable returning {"captured", "refunded", "settled"} paise.
POSITION_SOURCE = "ledger.gateway_position"
EXIT_GATEWAY_UNREACHABLE = 3


@ledger_cli.command("check")
@click.option(
    "--gateway/--no-gateway",
    default=True,
    help="Also prove gateway clearing equals what the gateway holds for us (default on).",
)
def check(gateway):
    """Prove every transaction balances and gateway clearing matches the gateway; exit 1
    listing the problems, 3 when the gateway could not be asked."""
    problems = verify_ledger()
    unreachable = None
    source = current_app.extensions.get(POSITION_SOURCE) if gateway else None
    if source is not None:
        try:
            position = source()
        except Exception as exc:  # any failure to ask is reported, never a traceback
            unreachable = f"{type(exc).__name__}: {exc}"[:300]
        else:
            problems += verify_gateway_clearing(position)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo(f"ledger check: {len(problems)} problem(s)", err=True)
        raise SystemExit(1)
    if unreachable:
        click.echo(
            "ledger check: the ledger is sound, but the gateway could not be reached to "
            f"prove gateway clearing ({unreachable}); run again, or --no-gateway",
            err=True,
        )
        raise SystemExit(EXIT_GATEWAY_UNREACHABLE)
    click.echo("ledger check: OK" + (" (gateway clearing matches the gateway)" if source else ""))


@ledger_cli.command("balance")
@click.argument("code")
def show_balance(code):
    """Print an account's balance (normal side, paise and rupees)."""
    try:
        amount = balance(code)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"{code}: {amount} paise ({format_inr(amount, always_show_paise=True)})")


def init_app(app):
    app.cli.add_command(ledger_cli)
