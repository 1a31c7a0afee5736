"""Receive a request body to disk, bounded in size and in time.

uvicorn bounds the headers and the wait between requests, not the body: a client that sends
headers and then a trickle, or nothing, would hold its connection and its spool file for as
long as it liked. Here the body must arrive within ``total_s`` and never pause longer than
``idle_s``; a stalled upload is answered 408 and its connection closed, and other clients'
uploads go on meanwhile (the wait is asynchronous).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from service.uploads import UploadRefused


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    total_s: float
    idle_s: float


async def receive_body(request: Request, destination: Path, limits: BodyLimits) -> None:
    """Stream the request body to ``destination``; refused past the limits."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(limits.max_bytes, f"this one declares {declared}")
    received = 0
    with destination.open("wb") as out:
        async for chunk in _chunks_in_time(request, limits):
            received += len(chunk)
            if received > limits.max_bytes:
                raise _too_large(limits.max_bytes, "this one is larger")
            out.write(chunk)


def _too_large(limit: int, found: str) -> UploadRefused:
    return UploadRefused(
        f"uploads may be at most {limit} bytes; {found}", status=413, kind="upload-too-large"
    )


async def _chunks_in_time(request: Request, limits: BodyLimits) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.total_s
    chunks = request.stream().__aiter__()
    while True:
        left = deadline - loop.time()
        wait = min(limits.idle_s, left)
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadRefused(
                f"the request body stalled: no byte for {limits.idle_s:g} s"
                if wait < left
                else f"the request body must arrive within {limits.total_s:g} s; it did not",
                status=408,
                kind="upload-timeout",
            ) from None
        yield chunk
