"""GitHub App authentication: a JWT signed with the App's private key buys installation tokens,
which are cached until shortly before they expire.

Every use of a token, by the API client and by git alike, goes through `TokenCache.use`: when
GitHub refuses a token before its stated expiry (the installation's permissions changed, it was
suspended and restored, the token was revoked), the token is dropped and the work is done once
more with a new one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel

from orchestrator.config.settings import ConfigError

# GitHub refuses JWTs that live longer than 10 minutes, and clocks drift: issue them a minute in the past.
JWT_BACKDATE = 60
JWT_LIFETIME = 540
# A token handed out must outlive the work it is for (a push may take minutes): renew it well before it expires.
TOKEN_MARGIN = 300

T = TypeVar("T")


class TokenRejected(RuntimeError):
    """GitHub refused an installation token (an API 401, or git's authentication failure); one line."""


class InstallationToken(BaseModel):
    token: str
    expires_at: datetime


def load_private_key(path: Path) -> RSAPrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"github.private_key_path: cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"github.private_key_path: {path} is not an unencrypted PEM private key; download the "
                          "App's key again from its settings page") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"github.private_key_path: {path} is not an RSA key, as GitHub App keys are")
    return key


def app_jwt(app_id: int, private_key: RSAPrivateKey, now: float) -> str:
    """The App's own credential, good for asking for installation tokens."""
    issued = int(now) - JWT_BACKDATE
    claims = {"iat": issued, "exp": issued + JWT_BACKDATE + JWT_LIFETIME, "iss": str(app_id)}
    return jwt.encode(claims, private_key, algorithm="RS256")


class TokenCache:
    """Installation tokens by installation id; `mint` asks GitHub for a new one."""

    def __init__(self, mint: Callable[[int], InstallationToken], clock: Callable[[], float] = time.time):
        self.mint = mint
        self.clock = clock
        self._tokens: dict[int, InstallationToken] = {}
        self._lock = threading.Lock()

    def get(self, installation_id: int) -> str:
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is None or cached.expires_at.timestamp() - self.clock() < TOKEN_MARGIN:
                cached = self.mint(installation_id)
                self._tokens[installation_id] = cached
            return cached.token

    def use(self, installation_id: int, work: Callable[[str], T]) -> T:
        """`work(token)`; when it raises TokenRejected, once more with a new token (a second refusal stands)."""
        token = self.get(installation_id)
        try:
            return work(token)
        except TokenRejected:
            self.forget(installation_id, token)
        return work(self.get(installation_id))

    def forget(self, installation_id: int, token: str | None = None) -> None:
        """Drop the cached token (only if it is still `token`, when given: another thread may have renewed it):
        the installation was removed, suspended or given new permissions, or GitHub refused the token."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and (token is None or cached.token == token):
                del self._tokens[installation_id]
