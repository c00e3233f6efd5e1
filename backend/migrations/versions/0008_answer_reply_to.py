"""answers name their question; questions hold a budget reservation

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each stored answer replies to the message right before it, when that is a question.
BACKFILL = """
UPDATE messages SET reply_to = (
    SELECT previous.id FROM messages AS previous
    WHERE previous.conversation_id = messages.conversation_id
      AND previous.id = (
          SELECT max(earlier.id) FROM messages AS earlier
          WHERE earlier.conversation_id = messages.conversation_id AND earlier.id < messages.id
      )
      AND previous.role = 'user'
)
WHERE role = 'assistant'
"""


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reply_to", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("reserved_tokens", sa.Integer(), nullable=True))
    op.execute(BACKFILL)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_reply_to", ["reply_to"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_reply_to")
        batch_op.drop_column("reserved_tokens")
        batch_op.drop_column("reply_to")
