"""payouts: the TDS rule each payout was deducted under (rate and threshold)

Revision ID: tdsrule00001
Revises: mmtds0a10001
Create Date: 2026-12-07 10:00:00

A payout's TDS was worked out by replaying the year's earlier payouts under the rule in
force *today*: after a rate change partway through a year, the next payout settled the
difference for every earlier one (a rate raised from 10% to 20% took 20% of the year's
earlier gross again; lowered to 5%, it gave the earlier "excess" back), and an ordinary
payout's TDS note was written against today's rate. POLICY.md: payouts are paid under the
rules of the day they are paid. So each payout keeps the rule it was deducted under,
``payouts.tds_rate_bps`` and ``payouts.tds_threshold`` (beside ``tds_section``), and the
replay takes each earlier payout under its own (docs/payouts.md).

Backfill: the rule a payout was deducted under is the one its creation read, the policy
version in force when it was made (``created_at``; approved versions only: a withdrawn
one never applied) and, in it, the rule for the payout's financial year, as
``Policy.tds_rule_for`` chose it then (the latest rule starting at or before the year,
else the first). Before any version was saved the app's ``POLICY`` setting was in force
(POLICY.md's defaults). Then both columns become NOT NULL, with a CHECK.

Locks (PostgreSQL): one transaction (migrations/env.py); the ALTERs hold an ACCESS
EXCLUSIVE lock on payouts through the backfill, so payout runs, webhooks and the payout
pages wait until it commits (one row a payout: a year of weekly payouts for 10,000
providers is half a million rows). Run it in a quiet window, outside a payout run. On
SQLite the batch rebuilds the table under the one write lock.
"""

import bisect

import sqlalchemy as sa
from alembic import op
from flask import current_app

import portal.db  # custom column types (UTCDateTime)

revision = "tdsrule00001"
down_revision = "mmtds0a10001"
branch_labels = None
depends_on = None

CHECK = "tds_rate_bps BETWEEN 0 AND 10000 AND tds_threshold >= 0"


def _start(label):
    """A financial year label ("2026-27") as the year it starts in: they sort alike."""
    return int(str(label)[:4])


def _rule_for(rules, fy):
    """``Policy.tds_rule_for`` on stored rules: the latest starting at or before ``fy``;
    before every rule, the first."""
    ordered = sorted(rules, key=lambda r: _start(r["from_fy"]))
    chosen = [r for r in ordered if _start(r["from_fy"]) <= _start(fy)]
    return chosen[-1] if chosen else ordered[0]


def _defaults():
    """The rules in force before any version was saved: the app's POLICY setting, else
    POLICY.md's defaults (``policies.store._fallback``)."""
    from portal.domain.policy import DEFAULT_POLICY

    pol = current_app.config.get("POLICY") or DEFAULT_POLICY
    return [
        {"from_fy": r.from_fy, "rate_bps": r.rate_bps, "threshold": r.threshold}
        for r in pol.tds_rules
    ]


# Typed, so both dialects hand back aware datetimes and parsed JSON to compare in Python.
policy_versions = sa.table(
    "policy_versions",
    sa.column("id", sa.Integer),
    sa.column("values", sa.JSON),
    sa.column("effective_from", portal.db.UTCDateTime),
    sa.column("status", sa.String),
)
payouts = sa.table(
    "payouts",
    sa.column("id", sa.Integer),
    sa.column("financial_year", sa.String),
    sa.column("created_at", portal.db.UTCDateTime),
)


def _backfill(bind):
    versions = bind.execute(
        sa.select(policy_versions.c.effective_from, policy_versions.c.id, policy_versions.c["values"])
        .where(policy_versions.c.status == "APPROVED")
        .order_by(policy_versions.c.effective_from, policy_versions.c.id)
    ).all()
    # The version in force when each payout was made: the latest effective_from at or
    # before it (ties: the higher id), as the policy store decides it.
    keys = [(v.effective_from, v.id) for v in versions]
    defaults = _defaults()
    updates = []
    for payout_id, fy, created_at in bind.execute(
        sa.select(payouts.c.id, payouts.c.financial_year, payouts.c.created_at)
    ):
        i = bisect.bisect_right(keys, (created_at, float("inf")))
        rules = versions[i - 1][2]["tds_rules"] if i else defaults
        rule = _rule_for(rules, fy)
        updates.append(
            {"id": payout_id, "rate": int(rule["rate_bps"]), "threshold": int(rule["threshold"])}
        )
    if updates:
        bind.execute(
            sa.text(
                "UPDATE payouts SET tds_rate_bps = :rate, tds_threshold = :threshold"
                " WHERE id = :id"
            ),
            updates,
        )


def upgrade():
    op.add_column("payouts", sa.Column("tds_rate_bps", sa.Integer(), nullable=True))
    op.add_column("payouts", sa.Column("tds_threshold", sa.BigInteger(), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table("payouts") as batch:
        batch.alter_column("tds_rate_bps", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("tds_threshold", existing_type=sa.BigInteger(), nullable=False)
        batch.create_check_constraint(op.f("ck_payouts_tds_rule_valid"), CHECK)


def downgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.drop_constraint(op.f("ck_payouts_tds_rule_valid"), type_="check")
        batch.drop_column("tds_threshold")
        batch.drop_column("tds_rate_bps")
