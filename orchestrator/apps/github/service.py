"""`shipyard github serve`: the webhook endpoint and the desk, in one process."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from orchestrator.apps.github.client import GitHub
from orchestrator.apps.github.desk import Desk
from orchestrator.apps.github.webhook import create_app
from orchestrator.config.settings import ConfigError, GitHubSettings, Settings

log = logging.getLogger(__name__)


def webhook_secret(config: GitHubSettings) -> str:
    secret = os.environ.get(config.webhook_secret_env, "")
    if not secret:
        raise ConfigError(f"{config.webhook_secret_env} is not set: put the App's webhook secret in it (or name "
                          "another variable in github.webhook_secret_env)")
    return secret


class GitHubService:
    def __init__(self, settings: Settings, github: GitHub | None = None, poll: float = 1.0,
                 clock: Callable[[], float] = time.time):
        secret = webhook_secret(settings.github)
        self.desk = Desk(settings, github or GitHub.from_settings(settings.github, clock), poll, clock)
        self.app = create_app(secret, self.desk.records, self.desk.wake.set, lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        desk = threading.Thread(target=self.desk.run, args=(stop,), name="github-desk", daemon=True)
        desk.start()
        try:
            yield
        finally:
            stop.set()
            self.desk.wake.set()
            await run_in_threadpool(desk.join, 60)
            self.desk.close()


def serve(settings: Settings, host: str, port: int) -> None:
    service = GitHubService(settings)
    log.info("GitHub App %s: webhooks on http://%s:%d/webhook", settings.github.app_id, host, port)
    uvicorn.run(service.app, host=host, port=port, log_level="info", access_log=False)
