"""The ledger beside the orders: signals, equity marks, reconciliations, their
acknowledgements and the position adjustments accepted from the broker.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from execution.store import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signal_slots") as batch:
        batch.add_column(sa.Column("completed_at", UTCDateTime(), nullable=True))
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("underlying", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(40), nullable=False),
        sa.Column("model_name", sa.String(100)),
        sa.Column("model_version", sa.String(20)),
        sa.Column("ts_features", UTCDateTime()),
        sa.Column("prediction", sa.Float),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("client_order_id", sa.String(64)),
        sa.Column("ts", UTCDateTime(), nullable=False),
    )
    op.create_index("signals_by_slot", "signals", ["deployment", "slot"])
    op.create_table(
        "equity_marks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("equity", sa.Float, nullable=False),
        sa.Column("cash", sa.Float, nullable=False),
    )
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("discrepancies", sa.Text, nullable=False),
        sa.Column("repaired_fills", sa.Integer, nullable=False),
        sa.Column("resolved_orders", sa.Integer, nullable=False),
    )
    op.create_table(
        "acknowledgements",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "position_adjustments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("contract_id", sa.String(32), nullable=False),
        sa.Column("contract", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("position_adjustments", "acknowledgements", "reconciliations",
                  "equity_marks", "signals"):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("signal_slots") as batch:
        batch.drop_column("completed_at")
