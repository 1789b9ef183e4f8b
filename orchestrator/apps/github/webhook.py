"""The webhook endpoint: verify, refuse replays, store, answer. All work happens later, on the desk."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Lifespan

from orchestrator.apps.github.payloads import PayloadError, parse_event
from orchestrator.apps.github.records import Records
from orchestrator.apps.github.signature import verify

# GitHub caps webhook payloads at 25 MB.
MAX_BODY = 25 * 1024 * 1024


def create_app(secret: str, records: Records, on_delivery: Callable[[], None],
               lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not verify(secret, body, request.headers.get("x-hub-signature-256")):
            return _error(401, "missing or wrong X-Hub-Signature-256")
        event = request.headers.get("x-github-event")
        delivery = request.headers.get("x-github-delivery")
        if not event or not delivery:
            return _error(400, "missing X-GitHub-Event or X-GitHub-Delivery")
        if event == "ping":
            return JSONResponse({"pong": delivery})
        try:
            payload = json.loads(body)
            parsed = parse_event(event, payload)
        except PayloadError as exc:
            return _error(400, str(exc))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than any payload
            return _error(400, "the body is not JSON: set the webhook's content type to application/json")
        if parsed is None:
            return JSONResponse({"ignored": f"{event} events are not handled"}, status_code=202)
        # The store is synchronous: off the event loop, so that other requests are answered meanwhile.
        accepted = await run_in_threadpool(records.accept, delivery, event, payload.get("action"), payload)
        if not accepted:
            return _error(409, f"delivery {delivery} was received before; a replay starts nothing")
        on_delivery()
        return JSONResponse({"queued": delivery}, status_code=202)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route("/webhook", webhook, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan, max_body_size=MAX_BODY)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
