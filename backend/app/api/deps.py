"""Typed access to what the lifespan created. Untyped `state.x` lives only here.

The getters are `async def` although they never wait: FastAPI runs plain functions in
its thread pool, a hop per dependency on every request and socket.
"""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from app.admin.service import AdminService
from app.api.socket.connections import ConnectionRegistry
from app.chat.service import ConversationService
from app.chat.turns import Client
from app.core.config import Settings
from app.core.metrics import Metrics
from app.leads.service import LeadService
from app.limits.client_ip import client_network, ip_of
from app.limits.limiter import RateLimiter
from app.live.hub import LiveHub


async def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.state.settings
    return settings


async def get_service(conn: HTTPConnection) -> ConversationService:
    service: ConversationService = conn.state.service
    return service


async def get_engine(conn: HTTPConnection) -> AsyncEngine:
    engine: AsyncEngine = conn.state.engine
    return engine


async def get_limiter(conn: HTTPConnection) -> RateLimiter:
    limiter: RateLimiter = conn.state.limiter
    return limiter


async def get_metrics(conn: HTTPConnection) -> Metrics:
    metrics: Metrics = conn.state.metrics
    return metrics


async def get_connections(conn: HTTPConnection) -> ConnectionRegistry:
    connections: ConnectionRegistry = conn.state.connections
    return connections


async def get_live_hub(conn: HTTPConnection) -> LiveHub:
    hub: LiveHub = conn.state.live_hub
    return hub


async def get_client(conn: HTTPConnection) -> Client:
    """The visitor's address: X-Forwarded-For counts only from TRUSTED_PROXIES."""
    ip = ip_of(conn, conn.state.trusted_proxies)
    settings: Settings = conn.state.settings
    return Client(ip, client_network(ip, settings.ipv6_prefix_length))


async def get_admin(conn: HTTPConnection) -> AdminService:
    admin: AdminService = conn.state.admin
    return admin


async def get_leads(conn: HTTPConnection) -> LeadService:
    leads: LeadService = conn.state.leads
    return leads


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[ConversationService, Depends(get_service)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ConnectionsDep = Annotated[ConnectionRegistry, Depends(get_connections)]
LiveHubDep = Annotated[LiveHub, Depends(get_live_hub)]
ClientDep = Annotated[Client, Depends(get_client)]
AdminDep = Annotated[AdminService, Depends(get_admin)]
LeadsDep = Annotated[LeadService, Depends(get_leads)]
