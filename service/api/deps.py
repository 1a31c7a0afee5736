"""Dependencies shared by the routers: settings, the job store, the calling client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from habitus.jobs import ANONYMOUS_OWNER, JobNotFoundError, JobRecord, JobStore
from habitus.settings import Scope, Settings
from service.api.problems import ProblemError
from service.apikeys import ALL_SCOPES, Caller, identify
from service.audit import CALLER_STATE
from service.queue import job_store

ANONYMOUS = ANONYMOUS_OWNER

_bearer = HTTPBearer(auto_error=False, description="An API key from HABITUS_API_KEYS")

ROUTE_SCOPES: tuple[tuple[str, str, Scope], ...] = (
    ("POST", "/v1/studies", Scope.SUBMIT),
    ("POST", "/v1/jobs/{job_id}/cancel", Scope.DELETE),
    ("DELETE", "/v1/jobs/", Scope.DELETE),
)
"""The scope a route needs, by method and path prefix (first match); others need read:own."""


def required_scope(method: str, route_path: str) -> Scope:
    for rule_method, prefix, scope in ROUTE_SCOPES:
        if method == rule_method and route_path.startswith(prefix):
            return scope
    return Scope.READ_OWN


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_store(settings: SettingsDep) -> JobStore:
    return job_store(settings.redis.url)


StoreDep = Annotated[JobStore, Depends(get_store)]


def require_caller(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The calling client; 401 without a valid bearer API key, 403 without the route's scope."""
    if settings.api.allow_anonymous and not settings.api.api_keys:
        caller = Caller(ANONYMOUS, ALL_SCOPES)
    elif credentials is None:
        raise _unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    else:
        found = identify(settings.api.api_keys, credentials.credentials)
        if found is None:
            raise _unauthorized(
                "the API key is not one of the configured keys", 'Bearer error="invalid_token"'
            )
        caller = found
    setattr(request.state, CALLER_STATE, caller.name)
    route_path = getattr(request.scope.get("route"), "path", request.url.path)
    scope = required_scope(request.method, route_path)
    if not caller.may(scope):
        raise ProblemError(
            403,
            f"the API key {caller.name!r} lacks the scope {scope.value!r} that this needs",
            kind="forbidden",
            scope=scope.value,
        )
    return caller


def _unauthorized(detail: str, challenge: str = "Bearer") -> ProblemError:
    """A 401 with the bearer scheme's challenge (RFC 6750 section 3)."""
    return ProblemError(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


CallerDep = Annotated[Caller, Depends(require_caller)]


def require_client(caller: CallerDep) -> str:
    """The calling client's name (require_caller's checks included)."""
    return caller.name


ClientDep = Annotated[str, Depends(require_client)]


def visible_job(store: JobStore, caller: Caller, job_id: str) -> JobRecord:
    """The job if the caller may see it; another owner's job is not found, as if absent,
    so that job ids cannot be probed."""
    record = store.get(job_id)
    if not caller.may_read(record.owner):
        raise JobNotFoundError(f"no job with id {job_id!r}")
    return record
