"""Challenges, phases and submissions (SPEC §12); a run's public/private split and the
live scores of each part

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tally_columns() -> list[sa.Column[object]]:
    """The counter columns of gateway.runs.models.LiveTallyColumns."""
    return [
        sa.Column("images_total", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("with_truth", sa.Integer(), nullable=False),
        sa.Column("true_pairs", sa.Integer(), nullable=False),
        sa.Column("top1", sa.Integer(), nullable=False),
        sa.Column("top5", sa.Integer(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_max", sa.Float(), nullable=True),
        sa.Column("latency_min", sa.Float(), nullable=True),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.Column("first_finished_at", sa.DateTime(), nullable=True),
        sa.Column("first_sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(), nullable=True),
    ]


# Runs get two nullable columns in place (no batch copy of `runs`, see 0006); the rest
# are new tables.
def upgrade() -> None:
    op.add_column("runs", sa.Column("public_fraction", sa.Float(), nullable=True))
    op.add_column("runs", sa.Column("split_seed", sa.BigInteger(), nullable=True))
    op.add_column("run_services", sa.Column("part_scores", sa.JSON(), nullable=True))
    op.create_table(
        "live_score_parts",
        sa.Column("run_service_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        *_tally_columns(),
        sa.ForeignKeyConstraint(
            ["run_service_id"],
            ["run_services.id"],
            name=op.f("fk_live_score_parts_run_service_id_run_services"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_live_score_parts_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_service_id", "part", name=op.f("pk_live_score_parts")),
    )
    op.create_index(
        op.f("ix_live_score_parts_run_id"), "live_score_parts", ["run_id"], unique=False
    )
    op.create_table(
        "challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("all_providers", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
        sa.UniqueConstraint("slug", name=op.f("uq_challenges_slug")),
    )
    op.create_table(
        "challenge_providers",
        sa.Column("challenge_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["challenges.id"],
            name=op.f("fk_challenge_providers_challenge_id_challenges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_challenge_providers_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_id", "provider_id", name=op.f("pk_challenge_providers")),
    )
    op.create_table(
        "challenge_phases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("metric", sa.String(length=30), nullable=False),
        sa.Column("opens_at", sa.DateTime(), nullable=False),
        sa.Column("closes_at", sa.DateTime(), nullable=False),
        sa.Column("per_day", sa.Integer(), nullable=True),
        sa.Column("per_week", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("counts", sa.String(length=10), nullable=False),
        sa.Column("selection_limit", sa.Integer(), nullable=False),
        sa.Column("visible", sa.String(length=10), nullable=False),
        sa.Column("public_fraction", sa.Float(), nullable=False),
        sa.Column("split_seed", sa.BigInteger(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("baselines", sa.JSON(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("final_ranking", sa.JSON(), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["challenges.id"],
            name=op.f("fk_challenge_phases_challenge_id_challenges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_challenge_phases_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge_phases")),
        sa.UniqueConstraint("challenge_id", "name", name=op.f("uq_challenge_phases_challenge_id")),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("by_organizer", sa.Boolean(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["phase_id"],
            ["challenge_phases.id"],
            name=op.f("fk_submissions_phase_id_challenge_phases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_submissions_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_submissions_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_submissions_service_id_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("run_id", "service_id", name=op.f("uq_submissions_run_id")),
    )
    op.create_index(
        "ix_submissions_phase_provider",
        "submissions",
        ["phase_id", "provider_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_submissions_phase_provider", table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("challenge_phases")
    op.drop_table("challenge_providers")
    op.drop_table("challenges")
    op.drop_index(op.f("ix_live_score_parts_run_id"), table_name="live_score_parts")
    op.drop_table("live_score_parts")
    for table, name in (
        ("run_services", "part_scores"),
        ("runs", "split_seed"),
        ("runs", "public_fraction"),
    ):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
        else:
            op.drop_column(table, name)
