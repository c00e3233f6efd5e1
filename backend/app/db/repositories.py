"""All SQL lives here. Repositories flush; the caller owns the transaction."""

import uuid
from datetime import date, datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Conversation, Message, UsageCounter


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, conversation_id: uuid.UUID) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def create(self, conversation_id: uuid.UUID, client_key: str) -> Conversation:
        conversation = Conversation(id=conversation_id, client_key=client_key)
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def count_question(self, conversation_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(question_count=Conversation.question_count + 1, updated_at=at)
        )

    async def add_tokens(self, conversation_id: uuid.UUID, tokens: int, at: datetime) -> None:
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(tokens_used=Conversation.tokens_used + tokens, updated_at=at)
        )


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: Message) -> Message:
        self.session.add(message)
        await self.session.flush()
        return message

    async def list_recent(self, conversation_id: uuid.UUID, limit: int) -> list[Message]:
        """The newest `limit` messages with text, oldest first."""
        rows = await self.session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.content != "")
            .order_by(Message.id.desc())
            .limit(limit)
        )
        return list(reversed(rows.all()))


class UsageRepository:
    """Daily token counters, added to atomically so concurrent instances agree."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tokens_on(self, day: date, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        rows = await self.session.execute(
            select(UsageCounter.scope, UsageCounter.key, UsageCounter.tokens).where(
                UsageCounter.day == day,
                tuple_(UsageCounter.scope, UsageCounter.key).in_(keys),
            )
        )
        return {(scope, key): tokens for scope, key, tokens in rows}

    async def add(self, day: date, keys: list[tuple[str, str]], tokens: int) -> None:
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        values = [{"scope": s, "key": k, "day": day, "tokens": tokens} for s, k in keys]
        statement = insert(UsageCounter).values(values)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["scope", "key", "day"],
                set_={"tokens": UsageCounter.tokens + statement.excluded.tokens},
            )
        )
