"""FastAPI dependencies as short ``Annotated`` aliases: settings, store session, InfluxDB, who is asking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api import registry
from api.db import StaffToken
from api.errors import ApiError
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from lauks.influx import InfluxClient

_bearer = HTTPBearer(auto_error=False, description="a staff token, created with `lauks token create --name NAME`")


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_influx(request: Request) -> InfluxClient:
    client: InfluxClient = request.app.state.influx
    return client


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
InfluxDep = Annotated[InfluxClient, Depends(get_influx)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def rate_limit(request: Request) -> None:
    limiter: RateLimiter = request.app.state.limiter
    auth = request.headers.get("authorization")
    address = request.client.host if request.client else "?"
    key = f"token:{registry.token_hash(auth)[:16]}" if auth else f"addr:{address}"
    wait = limiter.take(key)
    if wait:
        raise ApiError(429, "too_many_requests", f"too many requests: wait {RateLimiter.retry_after(wait)} s and "
                                                 "try again", headers={"Retry-After": RateLimiter.retry_after(wait)})


def _staff(session: Session, credentials: HTTPAuthorizationCredentials | None) -> StaffToken | None:
    if credentials is None:
        return None
    staff = registry.staff_for(session, credentials.credentials)
    if staff is None:
        raise ApiError(401, "bad_token", "this staff token is not known or was revoked: check it, or create a new "
                                         "one with `lauks token create --name NAME`",
                       headers={"WWW-Authenticate": "Bearer"})
    return staff


def require_staff(session: SessionDep, credentials: Credentials) -> StaffToken:
    staff = _staff(session, credentials)
    if staff is None:
        raise ApiError(401, "staff_only", "this needs a staff token: send the header 'Authorization: Bearer <token>' "
                                          "(staff create one with `lauks token create --name NAME`); classes use "
                                          "their dataset's share code at /v1/datasets/<code>",
                       headers={"WWW-Authenticate": "Bearer"})
    return staff


def require_reader(session: SessionDep, credentials: Credentials, settings: SettingsDep) -> StaffToken | None:
    """Staff, or anybody when LAUKS_API_PUBLIC_READ is on."""
    staff = _staff(session, credentials)
    if staff is None and not settings.api_public_read:
        require_staff(session, credentials)
    return staff


Staff = Annotated[StaffToken, Depends(require_staff)]
Reader = Annotated[StaffToken | None, Depends(require_reader)]
