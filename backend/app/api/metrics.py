from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.auth import require_bearer
from app.api.deps import MetricsDep, SettingsDep

router = APIRouter(tags=["operations"])

_bearer = HTTPBearer(auto_error=False, description="Needed when METRICS_TOKEN is set.")


def _check_access(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """404 while metrics are disabled (as if there were no route); 401 without the token."""
    if not settings.metrics_enabled:
        raise HTTPException(status_code=404)
    if settings.metrics_token is None:
        return
    require_bearer(credentials, settings.metrics_token)


@router.get(
    "/metrics",
    summary="Prometheus metrics: connections, questions, latencies, tokens, errors, refusals",
    dependencies=[Depends(_check_access)],
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"},
        401: {"description": "METRICS_TOKEN is set and the bearer token is missing or wrong"},
        404: {"description": "Metrics are disabled (METRICS_ENABLED=false)"},
    },
)
def metrics(metrics: MetricsDep) -> Response:
    # A plain `def`, run in a thread: with several workers, `render()` reads their files.
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
