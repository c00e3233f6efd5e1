import httpx

from tests.conftest import SettingsFactory
from tests.support.app import running_app


async def test_liveness_and_readiness_when_everything_is_up(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        live = await http.get(f"http://127.0.0.1:{port}/health")
        ready = await http.get(f"http://127.0.0.1:{port}/health/ready")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["mode"] == "model"
    assert {name: c["ok"] for name, c in body["components"].items()} == {
        "database": True,
        "resume": True,
        "llm": True,
    }
    assert "Maya Lindqvist" in body["components"]["resume"]["detail"]


async def test_readiness_is_503_without_a_model_when_excerpts_are_off(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        openrouter_api_key=None,
        openrouter_base_url="https://openrouter.ai/api/v1",
        fallback_mode="error",
    )
    async with running_app(settings) as port, httpx.AsyncClient() as http:
        ready = await http.get(f"http://127.0.0.1:{port}/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["mode"] == "unavailable"
    assert body["components"]["llm"] == {"ok": False, "detail": "OPENROUTER_API_KEY is not set"}
    assert body["components"]["database"]["ok"] is True


async def test_both_health_routes_are_documented(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        schema = (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
        docs = await http.get(f"http://127.0.0.1:{port}/docs")
        redoc = await http.get(f"http://127.0.0.1:{port}/redoc")
    assert {"/health", "/health/ready"} <= set(schema["paths"])
    assert "503" in schema["paths"]["/health/ready"]["get"]["responses"]
    assert docs.status_code == redoc.status_code == 200


async def test_every_response_carries_a_request_id(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        given = await http.get(f"http://127.0.0.1:{port}/health", headers={"X-Request-ID": "abc-1"})
        fresh = await http.get(f"http://127.0.0.1:{port}/health")
        hostile = await http.get(
            f"http://127.0.0.1:{port}/health", headers={"X-Request-ID": "x" * 65}
        )
    assert given.headers["x-request-id"] == "abc-1"
    assert len(fresh.headers["x-request-id"]) == 16
    assert hostile.headers["x-request-id"] != "x" * 65
