"""``flask ledger …`` commands. The app registers ``ledger_cli`` (an AppGroup)."""

import click
from flask.cli import AppGroup

from portal.domain.rates import format_inr
from portal.ledger.check import verify_ledger
from portal.ledger.service import balance

ledger_cli = AppGroup("ledger", help="The double-entry ledger.")


@ledger_cli.command("check")
def check():
    """Prove every transaction balances; exit 1 listing the problems otherwise."""
    problems = verify_ledger()
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo(f"ledger check: {len(problems)} problem(s)", err=True)
        raise SystemExit(1)
    click.echo("ledger check: OK")


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
