import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.api.deps import ConnectionsDep, EngineDep, LimiterDep, ServiceDep, SettingsDep

router = APIRouter(prefix="/health", tags=["health"])

DATABASE_CHECK_SECONDS = 2


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
    components: dict[str, Component] = Field(
        description="`database`, `resume`, `llm`; with REDIS_URL `redis` (reported, never "
        "blocking) and `rate_limits` (`redis`, `memory (redis unreachable)` or refusing); "
        "`server` while shutting down."
    )


@router.get("", summary="Liveness: the process is up", response_model=Liveness)
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    summary="Readiness: database answers, resume loaded, model configured, rate limits work",
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
        components["rate_limits"] = _rate_limits(
            redis_reachable=reachable, fail_open=limiter.fail_open
        )
    if connections.draining:
        components["server"] = Component(ok=False, detail="shutting down")
    # With RATE_LIMIT_FAIL_OPEN an unreachable Redis is reported but does not stop traffic.
    ready = all(component.ok for name, component in components.items() if name != "redis")
    body = Readiness(
        status="ready" if ready else "not_ready", mode=settings.answer_mode, components=components
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _database(engine: EngineDep) -> Component:
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the detail says which
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Component(ok=False, detail=f"unreachable ({reason})"[:200])
    return Component(ok=True, detail=engine.dialect.name)


def _rate_limits(*, redis_reachable: bool, fail_open: bool) -> Component:
    if redis_reachable:
        return Component(ok=True, detail="redis")
    if fail_open:
        return Component(ok=True, detail="memory (redis unreachable)")
    return Component(ok=False, detail="refusing questions (redis unreachable)")
