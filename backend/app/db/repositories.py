"""All SQL lives here. Repositories flush; the caller owns the transaction."""

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Conversation, Message


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, conversation_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Conversation.id).where(Conversation.id == conversation_id)
        )
        return found is not None

    async def create(self, conversation_id: uuid.UUID) -> Conversation:
        conversation = Conversation(id=conversation_id)
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def touch(self, conversation_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(Conversation).where(Conversation.id == conversation_id).values(updated_at=at)
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
