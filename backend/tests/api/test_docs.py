"""What /openapi.json, /docs and /redoc tell a reader matches what the server does."""

import json
import re
from typing import Any

import httpx

from tests.conftest import SettingsFactory
from tests.support.app import running_app


async def test_the_schema_states_the_limits_this_server_enforces(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        default = (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
    settings = make_settings(max_message_chars=1234, max_message_tokens=77)
    async with running_app(settings) as port, httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{port}"
        configured = (await http.get(f"{base}/openapi.json")).json()
        too_long = await http.post(f"{base}/api/chat", json={"message": "x" * 1235})

    def message(schema: dict[str, Any]) -> Any:
        return schema["components"]["schemas"]["ChatRequest"]["properties"]["message"]

    assert message(default)["maxLength"] == 4000
    assert message(configured)["maxLength"] == 1234
    assert too_long.status_code == 413
    socket = configured["paths"]["/ws"]["get"]["description"]
    assert "at most 1,234 characters" in socket
    assert "77 tokens" in socket
    assert "4,000" not in socket


async def test_the_websocket_entry_lists_its_parameters_and_a_real_426(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        schema = (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
        plain = await http.get(f"http://127.0.0.1:{port}/ws?session_id=x&last_seq=3")
    socket = schema["paths"]["/ws"]["get"]
    assert [p["name"] for p in socket["parameters"]] == ["session_id", "last_seq"]
    example = socket["responses"]["426"]["content"]["application/json"]["example"]
    assert plain.status_code == 426
    assert plain.json() == example


async def test_the_doc_pages_load_their_assets_from_this_server(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{port}"
        pages = [await http.get(f"{base}/docs"), await http.get(f"{base}/redoc")]
        assets = [url for page in pages for url in re.findall(r'(?:src|href)="([^"]+)"', page.text)]
        fetched = [await http.get(f"{base}{url}") for url in assets]
    assert len(assets) == 5  # Swagger UI's script, styles and icon; ReDoc's script and icon
    assert all(url.startswith("/static/vendor/") for url in assets)
    assert [response.status_code for response in fetched] == [200] * 5
    assert all("default-src 'self'" in page.headers["content-security-policy"] for page in pages)


async def test_every_documented_error_body_refers_to_a_schema_that_is_there(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        schema = (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert "ErrorBody" in refs
    assert refs <= set(schema["components"]["schemas"])
    responses = schema["paths"]["/api/chat"]["post"]["responses"]
    assert responses["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
