"""Create the tasks table.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

A migration is a record of the past, so its limits are written out here rather than imported from
app.tasks; tests/app/test_migrations.py checks that the live schema still agrees with app.tasks.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tasks (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            title      text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
            status     text        NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # Serves the status filter with newest-first keyset pagination.
    op.execute("CREATE INDEX tasks_status_id_idx ON tasks (status, id DESC)")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only: write a new revision instead")
