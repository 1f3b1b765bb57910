"""An `auth=oidc` project against a real OpenID provider: panva's oidc-provider, from npm.

The provider (tests/oidc_provider/issuer.mjs) issues client-credentials JWT access tokens for
the service's audience (RFC 9068), signed RS256, ES256 or PS256 by the keys this module makes:
one RSA and one EC key published with `alg`, and one RSA key published without it, as
Microsoft Entra ID publishes its keys. Tokens the provider will not make (another issuer,
`alg: none`, HMAC keyed with the public key) are made here with the provider's own keys.

Needs Node.js and `npm ci --prefix tests/oidc_provider` (the `oidc` session runs it).
"""

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from tests.service import call, free_port, launched, wait_until_ready
from tests.tools import clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.oidc

PROVIDER = Path(__file__).resolve().parent / "oidc_provider"
AUDIENCE = "https://orders.example"
OTHER_AUDIENCE = "https://another-api.example"  # the provider serves it too
START_TIMEOUT_SECONDS = 30.0
MIN_REFRESH_SECONDS = 1.0  # OIDC_JWKS_MIN_REFRESH_SECONDS: an unknown kid fetches again after


class Issuer:
    """The provider as a process on a fixed port: started, stopped, started again with new keys."""

    def __init__(self, folder: Path) -> None:
        """Make the first keys; `start` serves them."""
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys = make_keys("1")
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Serve the current keys until `stop`."""
        keys = self.folder / "keys.json"
        keys.write_text(json.dumps({"keys": [key.as_dict(private=True) for key in self.keys]}))
        keys.chmod(0o600)
        node = shutil.which("node")
        assert node, "Node.js is needed: the provider runs on it"
        command = [node, str(PROVIDER / "issuer.mjs"), str(self.port), str(keys), AUDIENCE]
        log = self.folder / "issuer.log"
        ready = f"ready {self.url}"
        started = log.read_text().count(ready) if log.exists() else 0
        with log.open("a") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, text=True
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while log.read_text().count(ready) == started:
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the provider did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving: the port then refuses connections."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def rotate(self, generation: str) -> None:
        """New keys (new key ids) in place of the old, served from the next `start`."""
        self.keys = make_keys(generation)

    def token(self, client: str, resource: str = AUDIENCE, scope: str = "read write") -> str:
        """An access token for `client` from the provider's token endpoint."""
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "resource": resource, "scope": scope}
        ).encode()
        request = urllib.request.Request(f"{self.url}/token", data=form, method="POST")  # noqa: S310
        secret = base64.b64encode(f"{client}:{client}-secret".encode()).decode()
        request.add_header("Authorization", f"Basic {secret}")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            token: str = json.loads(response.read())["access_token"]
        return token

    def forged(self, header: dict[str, Any], claims: dict[str, Any], kid: str) -> str:
        """A token signed here with the provider's key `kid`, as the provider's own would be."""
        now = int(time.time())
        base = {"iss": self.url, "aud": AUDIENCE, "sub": "forger", "iat": now, "exp": now + 300}
        # The key as the forger holds it: usable with any algorithm its type admits.
        (found,) = [key for key in self.keys if key.kid == kid]
        private = found.as_dict(private=True)
        private.pop("alg", None)
        key = KeySet.import_key_set({"keys": [private]}).keys[0]
        header = {"alg": "RS256", "kid": kid, "typ": "at+jwt", **header}
        return jwt.encode(header, {**base, **claims}, key, algorithms=[header["alg"]])


def make_keys(generation: str) -> list[RSAKey | ECKey]:
    """An RSA and an EC key published with `alg`, and an RSA key published without it."""
    return [
        RSAKey.generate_key(2048, {"kid": f"rsa-{generation}", "alg": "RS256", "use": "sig"}),
        ECKey.generate_key("P-256", {"kid": f"ec-{generation}", "alg": "ES256", "use": "sig"}),
        RSAKey.generate_key(2048, {"kid": f"rsa-no-alg-{generation}", "use": "sig"}),
    ]


@pytest.fixture(scope="module")
def provider_installed() -> None:
    """The provider's npm packages, exactly as locked."""
    npm = shutil.which("npm")
    assert npm, "npm is needed: apt-get install nodejs npm"
    run(npm, "ci", "--no-audit", "--no-fund", "--silent", cwd=PROVIDER)


@pytest.fixture
def issuer(provider_installed: None, tmp_path: Path) -> Iterator[Issuer]:
    """A provider of its own for the test, serving."""
    issuer = Issuer(tmp_path)
    issuer.start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture(scope="module")
def service_command(rendered: Callable[[str], Path]) -> tuple[Path, str]:
    """The `identity` project (OIDC) installed, and its command."""
    project = rendered("identity")
    return project, str(uv_sync(project) / package_of(project))


@contextmanager
def serving(
    service_command: tuple[Path, str],
    postgres: Any,
    issuer: Issuer,
    folder: Path,
    **settings: str,
) -> Iterator[tuple[str, Path]]:
    """The service migrated and served, trusting `issuer`; its base URL and its log."""
    project, command = service_command
    port = free_port()
    env = clean_environment(
        DATABASE_URL=postgres.create_database(f"oidc_{port}"),
        PORT=str(port),
        OIDC_ISSUER=issuer.url,
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_ALGORITHMS="RS256,ES256,PS256",
        OIDC_JWKS_MIN_REFRESH_SECONDS=str(MIN_REFRESH_SECONDS),
        OIDC_HTTP_TIMEOUT_SECONDS="2",
        LOG_LEVEL="DEBUG",  # the refusals' reasons are logged at DEBUG: no token may be
        **settings,
    )
    run(command, "migrate", cwd=project, env=env)
    log = folder / "serve.log"
    with launched([command, "serve"], cwd=project, env=env, log=log) as process:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{base}/health/live", process)
        yield base, log


def create(base: str, token: str) -> int:
    """POST a user with `token`; the status."""
    email = f"u{time.monotonic_ns()}@example.com"
    return call("POST", f"{base}/api/v1/users", {"email": email}, bearer(token))[0]


def created_once_the_issuer_answers(base: str, token: str, seconds: float = 10.0) -> int:
    """POST with `token` until it stops getting 503 (the keys are fetched again); the status."""
    deadline = time.monotonic() + seconds
    while (status := create(base, token)) == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    return status


def bearer(token: str) -> dict[str, str]:
    """The header carrying a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def assert_never_logged(log: Path, *tokens: str) -> None:
    """No token, nor any of its parts (header, claims, signature), in a line the service wrote."""
    text = log.read_text()
    for token in tokens:
        assert token not in text
        assert not [part for part in token.split(".") if part and part in text]


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT with `alg: none` and no signature."""
    return f"{b64(header)}.{b64(claims)}."


def signed_with_hmac(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT keyed with `secret` (the confused-deputy attack: a public key as secret)."""
    message = f"{b64({**header, 'alg': 'HS256'})}.{b64(claims)}"
    signature = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return f"{message}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def b64(document: dict[str, Any]) -> str:
    """A JSON object, base64url-encoded without padding."""
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def test_tokens_of_each_algorithm_are_accepted_for_their_scopes(
    service_command: tuple[Path, str], postgres: Any, issuer: Issuer, tmp_path: Path
) -> None:
    with serving(service_command, postgres, issuer, tmp_path) as (base, log):
        # PS256 is signed by the key published without `alg`.
        tokens = {client: issuer.token(client) for client in ("rs256", "es256", "ps256")}
        reader = issuer.token("reader", scope="read")
        created = {client: create(base, token) for client, token in tokens.items()}
        read = call("GET", f"{base}/api/v1/users", None, bearer(reader))[0]
        write = create(base, reader)

    assert created == {"rs256": 201, "es256": 201, "ps256": 201}
    assert (read, write) == (200, 403)
    assert_never_logged(log, reader, *tokens.values())


def test_tokens_that_prove_nothing_are_refused_with_401(
    service_command: tuple[Path, str], postgres: Any, issuer: Issuer, tmp_path: Path
) -> None:
    public_pem = issuer.keys[0].as_pem(private=False)
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "exp": now + 300}
    refused = {
        "another audience": issuer.token("rs256", resource=OTHER_AUDIENCE),
        "typ JWT (an ID token could pass)": issuer.token("typ-jwt"),
        "no exp": issuer.token("no-exp"),
        "no kid": issuer.token("no-kid"),
        "another issuer": issuer.forged({}, {"iss": "http://127.0.0.1:1"}, "rsa-1"),
        "alg none": unsigned({"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}, claims),
        "HS256 keyed with the public key": signed_with_hmac(
            {"typ": "at+jwt", "kid": "rsa-1"}, claims, public_pem
        ),
        "PS256 over a key published for RS256": issuer.forged({"alg": "PS256"}, {}, "rsa-1"),
        "a key the issuer never published": Issuer(tmp_path).forged({}, {}, "rsa-1"),
    }
    with serving(service_command, postgres, issuer, tmp_path) as (base, log):
        answers = {
            case: call("POST", f"{base}/api/v1/users", {"email": "r@x.io"}, bearer(token))
            for case, token in refused.items()
        }

    assert {case: status for case, (status, _, _) in answers.items()} == dict.fromkeys(refused, 401)
    for case, (_, _, headers) in answers.items():
        assert headers["www-authenticate"].startswith('Bearer error="invalid_token"'), case
    assert_never_logged(log, *refused.values())


def test_a_typ_jwt_token_passes_when_the_setting_allows_it(
    service_command: tuple[Path, str], postgres: Any, issuer: Issuer, tmp_path: Path
) -> None:
    token = issuer.token("typ-jwt")
    with serving(service_command, postgres, issuer, tmp_path, OIDC_REQUIRE_AT_JWT="false") as (
        base,
        _,
    ):
        assert create(base, token) == 201


def test_rotated_keys_are_used_without_a_restart(
    service_command: tuple[Path, str], postgres: Any, issuer: Issuer, tmp_path: Path
) -> None:
    with serving(service_command, postgres, issuer, tmp_path) as (base, log):
        old = issuer.token("ps256")
        assert create(base, old) == 201
        issuer.stop()
        issuer.rotate("2")
        issuer.start()
        new = {client: issuer.token(client) for client in ("rs256", "es256", "ps256")}
        time.sleep(MIN_REFRESH_SECONDS)  # a kid the service does not know may fetch again

        assert {client: create(base, token) for client, token in new.items()} == dict.fromkeys(
            new, 201
        )
        assert create(base, old) == 401  # its key is no longer published
    assert_never_logged(log, old, *new.values())


def test_an_unreachable_issuer_gives_503_for_keys_not_held_and_readiness_says_so(
    service_command: tuple[Path, str], postgres: Any, issuer: Issuer, tmp_path: Path
) -> None:
    with serving(service_command, postgres, issuer, tmp_path) as (base, log):
        held = issuer.token("rs256")
        issuer.stop()
        issuer.rotate("2")
        issuer.start()
        unseen = issuer.token("rs256")  # signed by a key the service has not fetched
        issuer.stop()
        time.sleep(MIN_REFRESH_SECONDS)  # so the unseen kid makes the service try the issuer

        assert create(base, held) == 201  # the keys held still check their tokens
        status, body, headers = call(
            "POST", f"{base}/api/v1/users", {"email": "d@x.io"}, bearer(unseen)
        )
        assert status == 503, body
        assert int(headers["retry-after"]) >= 1
        ready = call("GET", f"{base}/health/ready")
        assert ready[0] == 200  # in rotation: every instance shares the issuer
        assert ready[1]["status"] == "degraded"
        assert ready[1]["checks"]["issuer"] == "stale (ConnectError)"

        issuer.start()
        assert created_once_the_issuer_answers(base, unseen) == 201
        assert call("GET", f"{base}/health/ready")[1]["checks"]["issuer"] == "ok"
    assert_never_logged(log, held, unseen)


def test_a_service_started_while_the_issuer_is_down_answers_503_then_serves(
    service_command: tuple[Path, str], postgres: Any, issuer: Issuer, tmp_path: Path
) -> None:
    token = issuer.token("es256")
    issuer.stop()
    with serving(service_command, postgres, issuer, tmp_path) as (base, log):
        status, _, headers = call(
            "POST", f"{base}/api/v1/users", {"email": "s@x.io"}, bearer(token)
        )
        ready = call("GET", f"{base}/health/ready")

        assert status == 503
        assert int(headers["retry-after"]) >= 1
        assert ready[0] == 200
        assert ready[1]["checks"]["issuer"] == "unavailable (ConnectError)"

        issuer.start()
        assert created_once_the_issuer_answers(base, token) == 201
    assert_never_logged(log, token)
    assert "Traceback" not in log.read_text()
