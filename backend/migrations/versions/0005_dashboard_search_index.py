"""dashboard search: a full-text index of message text (PostgreSQL only)

The admin listing's `q` (`AdminRepository.mentions`) matches
`to_tsvector('english', content)`; without this index a word that few messages hold
means computing that vector for every message. SQLite searches with LIKE, unindexed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_messages_content_search"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        INDEX,
        "messages",
        [sa.text("to_tsvector('english'::regconfig, content)")],
        postgresql_using="gin",
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="messages")
