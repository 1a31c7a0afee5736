"""Dependencies shared by the routers: settings, the job store, the calling client."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from habitus.jobs import JobStore
from service.api.problems import ProblemError
from service.queue import job_store
from service.settings import ServiceSettings

ANONYMOUS = "anonymous"

_bearer = HTTPBearer(auto_error=False, description="An API key from HABITUS_API_KEYS")


def get_app_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ServiceSettings, Depends(get_app_settings)]


def get_store(settings: SettingsDep) -> JobStore:
    return job_store(settings.redis_url)


StoreDep = Annotated[JobStore, Depends(get_store)]


def client_for_key(settings: ServiceSettings, key: str | None) -> str | None:
    """The name of the client owning ``key``, or None; compared in constant time."""
    if key is None:
        return None
    found: str | None = None
    for name, secret in settings.api_keys.items():
        if hmac.compare_digest(secret.get_secret_value().encode(), key.encode()):
            found = name
    return found


def require_client(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The calling client's name; 401 without a valid bearer API key."""
    if settings.allow_anonymous and not settings.api_keys:
        return ANONYMOUS
    if credentials is None:
        raise ProblemError(
            401,
            "an API key is required: send 'Authorization: Bearer <key>'",
            kind="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    client = client_for_key(settings, credentials.credentials)
    if client is None:
        raise ProblemError(
            401,
            "the API key is not one of the configured keys",
            kind="unauthorized",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return client


ClientDep = Annotated[str, Depends(require_client)]
