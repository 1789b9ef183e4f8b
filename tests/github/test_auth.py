"""App authentication against the fake GitHub: JWTs, installation tokens and their cache, Enterprise URLs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from appkit import APP_ID, INSTALLATION, REPO
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fake_github import FakeGitHub
from helpers import make_repo

from orchestrator.apps.github.auth import InstallationToken, TokenCache, app_jwt, load_private_key
from orchestrator.apps.github.client import GitHub, GitHubError
from orchestrator.config.settings import ConfigError


@pytest.fixture
def fake(tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[FakeGitHub]:
    made = FakeGitHub(tmp_path / "github", APP_ID, app_key.public_key())
    made.add_repo(REPO, make_repo(tmp_path / "src", {"README.md": "hello\n"}), INSTALLATION)
    yield made
    made.stop()


def minted(fake: FakeGitHub) -> int:
    return sum(1 for method, path in fake.requests if path.endswith("/access_tokens"))


def test_the_jwt_is_what_github_accepts(app_key: RSAPrivateKey) -> None:
    now = time.time()
    claims = jwt.decode(app_jwt(APP_ID, app_key, now), app_key.public_key(), algorithms=["RS256"])
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] <= now - 30, "backdated against clock drift"
    assert claims["exp"] - claims["iat"] <= 600 and claims["exp"] > now + 60


def test_tokens_are_cached_until_shortly_before_they_expire() -> None:
    clock = [1000.0]
    mints: list[int] = []

    def mint(installation: int) -> InstallationToken:
        mints.append(installation)
        return InstallationToken(token=f"t{len(mints)}", expires_at=datetime.fromtimestamp(clock[0] + 3600, UTC))

    cache = TokenCache(mint, clock=lambda: clock[0])
    assert cache.get(1) == cache.get(1) == "t1"
    clock[0] += 3000  # ten minutes left: still good
    assert cache.get(1) == "t1"
    clock[0] += 400  # under five minutes left: renewed
    assert cache.get(1) == "t2"
    assert cache.get(2) == "t3", "one token per installation"
    cache.forget(1)
    assert cache.get(1) == "t4"


def test_the_client_reuses_tokens_and_replaces_revoked_ones(fake: FakeGitHub, app_key: RSAPrivateKey) -> None:
    github = GitHub(fake.url, APP_ID, app_key)
    assert github.repository(INSTALLATION, REPO).default_branch == "main"
    assert github.may_write(INSTALLATION, REPO, "nobody-known") is False
    assert minted(fake) == 1
    fake.tokens.clear()  # revoked before its time, as when an installation's permissions change
    assert github.repository(INSTALLATION, REPO).clone_url == fake.clone_url(REPO)
    assert minted(fake) == 2
    fake.token_lifetime = 200  # shorter than the margin: every call needs a new one
    github.tokens.forget(INSTALLATION)
    github.repository(INSTALLATION, REPO)
    github.repository(INSTALLATION, REPO)
    assert minted(fake) == 4


def test_enterprise_api_url(fake: FakeGitHub, app_key: RSAPrivateKey) -> None:
    github = GitHub(fake.url + "/api/v3/", APP_ID, app_key)
    assert github.repository(INSTALLATION, REPO).full_name == REPO
    assert ("POST", f"/api/v3/app/installations/{INSTALLATION}/access_tokens") in fake.requests


def test_a_wrong_key_is_refused(fake: FakeGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(GitHubError, match=r"POST /app/installations/4242/access_tokens: 401 A JSON web token"):
        GitHub(fake.url, APP_ID, other).token(INSTALLATION)


def test_private_key_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_private_key(tmp_path / "bad.pem")
