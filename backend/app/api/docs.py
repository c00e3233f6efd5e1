"""The API's documentation: `/openapi.json` with this server's limits, Swagger UI at `/docs`
and ReDoc at `/redoc`, their scripts and styles served from `static/vendor` (no CDN).
"""

import copy
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.api.errors import ERROR_BODY_REF
from app.api.socket.docs import limits_paragraph
from app.core.config import Settings

VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor"
ASSETS = "/static/vendor"

router = APIRouter(include_in_schema=False)

# Everything from this server: ReDoc's sidebar would otherwise fetch a logo from its CDN.
# Swagger UI's page has an inline script; ReDoc runs its search in a blob: worker.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


_BODY_TOO_LARGE = {
    "description": "The body is over MAX_REQUEST_BODY_BYTES (refused before it is read whole)",
    "content": {
        "application/json": {
            "schema": {"$ref": ERROR_BODY_REF},
            "example": {
                "error": {
                    "code": "content_too_large",
                    "message": "Request bodies are limited to 65536 bytes.",
                }
            },
        }
    },
}


def install_docs(app: FastAPI) -> None:
    """Serve the documentation routes and their assets (create the app with `docs_url=None`,
    `redoc_url=None` and `openapi_url=None`), and document the body limit on every route."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=VENDOR), name="vendor")
    generate = app.openapi

    def openapi_with_body_limit() -> dict[str, Any]:
        return with_body_limit(generate())

    app.openapi = openapi_with_body_limit  # type: ignore[method-assign]


def with_body_limit(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes a body may answer 413: the app's BodyLimit middleware
    refuses bodies over MAX_REQUEST_BODY_BYTES whatever the route (in place; idempotent)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", _BODY_TOO_LARGE)
    return schema


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    app: FastAPI = request.app
    return JSONResponse(documented(app.openapi(), request.state.settings))


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/swagger-ui/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
    )
    page.headers["Content-Security-Policy"] = _CSP
    return page


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = _CSP
    return page


def documented(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`schema` with the limits `settings` enforce, where the code alone shows defaults."""
    schema = copy.deepcopy(schema)
    components = schema.get("components", {}).get("schemas", {})
    message = components.get("ChatRequest", {}).get("properties", {}).get("message")
    if message is not None:
        message["maxLength"] = settings.max_message_chars
    socket = schema.get("paths", {}).get("/ws", {}).get("get")
    if socket is not None:
        default = limits_paragraph(Settings.model_construct())
        socket["description"] = socket["description"].replace(default, limits_paragraph(settings))
    return schema
