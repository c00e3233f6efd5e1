"""Typed access to what the lifespan created. Untyped `state.x` lives only here."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.services.conversation import ConversationService
from app.services.resume_loader import Resume


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.state.settings
    return settings


def get_service(conn: HTTPConnection) -> ConversationService:
    service: ConversationService = conn.state.service
    return service


def get_engine(conn: HTTPConnection) -> AsyncEngine:
    engine: AsyncEngine = conn.state.engine
    return engine


def get_resume(conn: HTTPConnection) -> Resume:
    resume: Resume = conn.state.resume
    return resume


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[ConversationService, Depends(get_service)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
ResumeDep = Annotated[Resume, Depends(get_resume)]
