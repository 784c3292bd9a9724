"""FastAPI dependencies as short ``Annotated`` aliases: settings, store session, InfluxDB, who is asking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.ratelimit import OpenedCodes, RateLimiter, address_key, client_address
from api.settings import ApiSettings
from lauks.influx import InfluxClient
from metastore import registry, sharecode
from metastore.db import Dataset, StaffToken
from metastore.errors import NotFound

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


def client_of(request: Request) -> str:
    """The client's address: the peer, or X-Forwarded-For when the peer is a proxy we were told to trust."""
    settings: ApiSettings = request.app.state.settings
    peer = request.client.host if request.client else "?"
    return client_address(peer, request.headers.get("x-forwarded-for"), settings.api_trusted_proxies)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, the scheme in any spelling."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def rate_limit(request: Request) -> None:
    """One bucket per valid staff token, else per client address: a made-up token is just an address."""
    limiter: RateLimiter = request.app.state.limiter
    token = bearer_token(request)
    staff = None
    if token is not None and token.startswith("lauks_"):
        with request.app.state.sessions() as session:
            staff = registry.staff_for(session, token)
    key = f"staff:{staff.id}" if staff is not None else address_key(client_of(request))
    wait = limiter.take(key)
    if wait:
        raise ApiError(429, "too_many_requests", f"too many requests: wait {RateLimiter.retry_after(wait)} s and "
                                                 "try again", headers={"Retry-After": RateLimiter.retry_after(wait)})


def dataset_for_code(request: Request, session: Session, typed: str) -> Dataset:
    """The dataset of a share code, within the address's budget of codes not found.

    Every lookup waits while the budget is spent, the right code too: otherwise a 429 would say "wrong" and a
    200 "right", and guessing would go on at the full request rate. Only a code already found from this
    address (``OpenedCodes``) goes on being served: the rest of a class keeps its dataset.
    """
    failures: RateLimiter = request.app.state.code_failures
    opened: OpenedCodes = request.app.state.opened_codes
    key = address_key(client_of(request))
    code = sharecode.normalise(typed)
    wait = 0.0 if code is not None and (key, code) in opened else failures.wait(key)  # a code found from here
    if wait:
        raise ApiError(429, "too_many_wrong_codes", "too many share codes that do not exist were tried from here: "
                                                    f"wait {RateLimiter.retry_after(wait)} s, then check the code "
                                                    "for typos", headers={"Retry-After": RateLimiter.retry_after(wait)})
    try:
        dataset = registry.dataset_by_code(session, typed)
    except NotFound:
        failures.take(key)
        raise
    opened.remember(key, dataset.code)
    return dataset


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
