import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.api.deps import ConnectionsDep, EngineDep, LimiterDep, ServiceDep, SettingsDep

router = APIRouter(prefix="/health", tags=["health"])


class Liveness(BaseModel):
    status: str = "ok"


class Component(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: str
    mode: str = Field(
        description="What answers visitors: `model`, `resume_excerpt` (no model configured: "
        "answers are passages of the resume) or `unavailable`."
    )
    components: dict[str, Component]


@router.get("", summary="Liveness: the process is up", response_model=Liveness)
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    summary="Readiness: database (and Redis) answer, resume loaded, model configured",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A component is not ready"}},
)
async def readiness(
    engine: EngineDep,
    service: ServiceDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    connections: ConnectionsDep,
) -> JSONResponse:
    components = {
        "database": await _database(engine),
        "resume": Component(
            ok=True, detail=f"{service.resume.owner_name} ({service.resume.format})"
        ),
        "llm": Component(
            ok=settings.answer_mode != "unavailable",
            detail=", ".join([settings.llm_model, *settings.llm_fallback_models])
            if settings.llm_configured
            else "OPENROUTER_API_KEY is not set"
            + (
                "; answering with resume excerpts"
                if settings.answer_mode == "resume_excerpt"
                else ""
            ),
        ),
    }
    if limiter.storage_name == "redis":
        reachable = await limiter.ping()
        components["redis"] = Component(ok=reachable, detail="ok" if reachable else "unreachable")
    if connections.draining:
        components["server"] = Component(ok=False, detail="shutting down")
    ready = all(component.ok for component in components.values())
    body = Readiness(
        status="ready" if ready else "not_ready", mode=settings.answer_mode, components=components
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _database(engine: EngineDep) -> Component:
    try:
        async with asyncio.timeout(2), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the detail says which
        return Component(ok=False, detail=f"{type(exc).__name__}: {exc}"[:200])
    return Component(ok=True, detail=engine.dialect.name)
