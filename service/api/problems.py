"""RFC 9457 problem documents for every error the API returns."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from http import HTTPMethod, HTTPStatus
from typing import Any

import redis
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from habitus.errors import HabitusError, InputRefused
from habitus.jobs import JobConflictError, JobNotFoundError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://habitus.invalid/problems/"  # stable identifiers, not fetched

log = logging.getLogger("service.api")


class Problem(BaseModel):
    """An RFC 9457 problem document; extension members are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ProblemError(Exception):
    """Raised by routes to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = headers
        self.extensions = extensions


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: a problem document for each status code, with its description."""
    return {
        code: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": description}
        for code, description in descriptions.items()
    }


PROBLEM_RESPONSES = problem_responses(
    {
        401: "Missing or wrong API key",
        404: "No such resource",
        409: "The resource is not in a state that allows this",
        422: "The request or its content is not acceptable",
        500: "Internal error",
    }
)
"""Documented on every authenticated route."""


def authenticated_router(
    prefix: str, tag: str, caller: Callable[..., Any], problems: dict[int, str], **options: Any
) -> APIRouter:
    """Routes under ``prefix`` that ``caller`` (a dependency) authenticates, documenting the
    problems of every authenticated route and ``problems``."""
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        dependencies=[Depends(caller)],
        responses={**PROBLEM_RESPONSES, **problem_responses(problems)},
        **options,
    )


def problem_response(
    status: int,
    detail: str | None,
    request: Request,
    *,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    problem = Problem(
        type=PROBLEM_TYPE_BASE + kind if kind else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extensions,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status, exc.detail, request, kind=exc.kind, headers=exc.headers, **exc.extensions
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem_response(exc.status_code, detail, request, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path routes, not only those of the first route matching the path."""
    routes = request.app.router.routes
    return ", ".join(
        method.value
        for method in HTTPMethod
        if any(
            route.matches({**request.scope, "method": method.value})[0] == Match.FULL
            for route in routes
        )
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return problem_response(
        422, "the request does not match the API", request, kind="validation", errors=errors
    )


async def _on_habitus_error(request: Request, exc: Exception) -> JSONResponse:
    message = _without_server_paths(str(exc), request)
    if isinstance(exc, JobNotFoundError):
        return problem_response(404, message, request, kind="job-not-found")
    if isinstance(exc, JobConflictError):
        return problem_response(409, message, request, kind="job-conflict")
    if isinstance(exc, InputRefused):
        return problem_response(
            422, message, request, kind="input-refused", error=type(exc).__name__
        )
    return problem_response(422, message, request, kind="refused", error=type(exc).__name__)


def _without_server_paths(message: str, request: Request) -> str:
    """``message`` with the spool's folders left out: a refusal names the files of an upload
    as the client sent them, never where the server keeps them."""
    settings = getattr(request.app.state, "settings", None)
    spool = getattr(settings, "spool_dir", None)
    if spool is None:
        return message
    # <spool>/uploads/<id>/files/000001.dcm -> 000001.dcm: the folders go, the name stays
    pattern = re.escape(str(spool)) + r"(?:/[^/\s:!]+)*/"
    return re.sub(pattern, "", message)


async def _on_store_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """Redis (the job store and the queue) away: the service is unavailable, not broken."""
    log.warning("%s %s: job store unreachable: %s", request.method, request.url.path, exc)
    return problem_response(
        503,
        f"the job store (Redis) does not answer ({type(exc).__name__}); try again later",
        request,
        kind="store-unavailable",
        headers={"Retry-After": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error on %s %s (reference %s)",
        request.method,
        request.url.path,
        reference,
        exc_info=exc,
    )
    return problem_response(
        500,
        f"internal error; the service logs hold the details under reference {reference}",
        request,
        kind="internal",
        reference=reference,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HabitusError, _on_habitus_error)
    for unreachable in (redis.ConnectionError, redis.TimeoutError):
        app.add_exception_handler(unreachable, _on_store_unreachable)
    app.add_exception_handler(Exception, _on_unexpected)
