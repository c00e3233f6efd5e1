"""The owner's dashboard at `/admin`: plain files from app/static/admin, no build step.

Like the admin API it is absent (404) while ADMIN_TOKEN is unset. The page holds no
data of its own: it asks for the token and reads everything from /api/admin with it.
"""

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from app.api.deps import SettingsDep

STATIC = Path(__file__).resolve().parents[1] / "static" / "admin"
ASSETS = {"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"}

# No inline script or style, nothing from elsewhere, never framed; forms post nowhere
# (the sign-in form is handled by the script, so a token never lands in a URL).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # revalidated (ETag), so a new release shows at once
}


async def require_admin_token(settings: SettingsDep) -> None:
    """404 while ADMIN_TOKEN is unset, as for the admin API; the files need no token."""
    if settings.admin_token is None:
        raise HTTPException(status_code=404)


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_admin_token)])


@router.get("/admin")
async def dashboard() -> FileResponse:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/admin/{name}")
async def dashboard_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    return _file(name, media_type)


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=media_type, headers=SECURITY_HEADERS)
