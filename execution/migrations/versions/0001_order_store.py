"""The order store: orders, their events and fills, signal slots, the trading state,
risk rejections.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from execution.store import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(64), primary_key=True),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("underlying", sa.String(16), nullable=False),
        sa.Column("structure", sa.String(40), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("broker_order_id", sa.String(100)),
        sa.Column("filled_quantity", sa.Integer, nullable=False),
        sa.Column("avg_fill_price", sa.Float),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ts_init", UTCDateTime(), nullable=False),
        sa.Column("ts_last", UTCDateTime(), nullable=False),
    )
    op.create_index("orders_by_status", "orders", ["status"])
    op.create_index("orders_by_slot", "orders", ["deployment", "slot"])
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "client_order_id",
            sa.String(64),
            sa.ForeignKey("orders.client_order_id"),
            nullable=False,
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("filled_quantity", sa.Integer, nullable=False),
        sa.Column("avg_fill_price", sa.Float),
        sa.Column("broker_order_id", sa.String(100)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ts_event", UTCDateTime(), nullable=False),
        sa.Column("ts_init", UTCDateTime(), nullable=False),
    )
    op.create_index("order_events_by_order", "order_events", ["client_order_id"])
    op.create_table(
        "fills",
        sa.Column("fill_id", sa.String(100), primary_key=True),
        sa.Column(
            "client_order_id",
            sa.String(64),
            sa.ForeignKey("orders.client_order_id"),
            nullable=False,
        ),
        sa.Column("contract_id", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("commission", sa.Float, nullable=False),
        sa.Column("ts_event", UTCDateTime(), nullable=False),
        sa.Column("ts_init", UTCDateTime(), nullable=False),
    )
    op.create_index("fills_by_order", "fills", ["client_order_id"])
    op.create_table(
        "signal_slots",
        sa.Column("deployment", sa.String(100), primary_key=True),
        sa.Column("slot", UTCDateTime(), primary_key=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "trading_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "risk_rejections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_order_id", sa.String(64)),
        sa.Column("check_name", sa.String(60), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "risk_rejections", "trading_state", "signal_slots", "fills", "order_events", "orders",
    ):  # fmt: skip
        op.drop_table(table)
