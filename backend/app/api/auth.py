"""Bearer-token checks for the owner's routes (admin, metrics)."""

import secrets

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr


def require_bearer(credentials: HTTPAuthorizationCredentials | None, token: SecretStr) -> None:
    """401 with `WWW-Authenticate` unless the request carries exactly `token`."""
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, token.get_secret_value().encode()):
        raise HTTPException(
            status_code=401,
            detail="A valid bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
