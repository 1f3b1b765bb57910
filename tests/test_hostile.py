"""Hostile clients against a served default project: a fuzzer, named probes and log markers.

The contract of issue 12, end to end over real HTTP: no request makes the service answer >= 500
(a database fault aside, which is a 503 or a 504), every answer conforms to the OpenAPI document
and every error is a problem+json body with its documented status, and no request value ever
reaches a log line. The default project authenticates with API keys: the fuzzer and the probes
send a key to read and write, issued by the project's own CLI, so they reach the handlers; the
credential itself is probed too, and neither it nor a bad one is ever logged.
"""

import base64
import contextlib
import json
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.local_postgres import load
from tests.service import (
    Reply,
    call,
    exchange,
    free_port,
    issue_key,
    migrated_and_serving,
    stop,
)
from tests.tools import clean_environment, package_of, uv_sync

pytestmark = pytest.mark.generated

MIB = 1024 * 1024
BODY_LIMIT = MIB  # REQUEST_MAX_BODY_BYTES's default
# The largest id and offset the API takes: what JSON numbers hold exactly (I-JSON, RFC 7493);
# the columns are BIGINT, so everything past it is refused before SQL.
MAX_ID = 2**53 - 1
PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}
USERS, POSTS = "/api/v1/users", "/api/v1/posts"
USER_ITEM, POST_ITEM = "/api/v1/users/{user_id}", "/api/v1/posts/{post_id}"

# The fuzzer's budget: about a minute on this 2-core machine. The seed makes a run repeatable.
FUZZ_SEED = 20261201
FUZZ_EXAMPLES = 400  # per operation
FUZZ_TIMEOUT = 300.0  # a hard stop; a run that needs it has hung


@dataclass(frozen=True)
class Served:
    """A served project: where it listens, where its log goes, a key to read and write."""

    port: int
    log: Path
    key: dict[str, str]  # the header carrying the key

    @property
    def base(self) -> str:
        """The service's root URL."""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def served(
    rendered: Callable[[str], Path], postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The default project served by one worker, its OpenAPI document on, for the whole module."""
    project = rendered("defaults")
    command = str(uv_sync(project) / package_of(project))
    port = free_port()
    env = clean_environment(
        DATABASE_URL=postgres.create_database("hostile"),
        PORT=str(port),
        WEB_CONCURRENCY="1",
        ENVIRONMENT="production",
        API_DOCS="true",  # off by default in production
    )
    log = tmp_path_factory.mktemp("hostile") / "serve.log"
    with migrated_and_serving(command, project, env, log):
        key = issue_key(command, project, env, "read", "write", name="hostile")
        assert key, "the default project authenticates with API keys"
        yield Served(port, log, key)


def as_json(value: object) -> bytes:
    """A request body: `value` as JSON."""
    return json.dumps(value).encode()


def secret_of(key: dict[str, str]) -> str:
    """The secret part of the key a header carries (`ak_<lookup>_<secret>`): never to be logged."""
    return key["Authorization"].removeprefix("Bearer ").split("_", 2)[2]


def lookup_of(key: dict[str, str]) -> str:
    """The lookup part of the key a header carries: the part that finds its row."""
    return key["Authorization"].removeprefix("Bearer ").split("_", 2)[1]


def settled_log(served: Served) -> str:
    """The service's log once every line of the requests sent so far is in it.

    One worker logs in order: once the line of a request sent now is there, so are the earlier.
    """
    request_id = exchange(served.port, "GET", "/health/live").headers["x-request-id"]
    deadline = time.monotonic() + 10
    while request_id not in (text := served.log.read_text()):
        assert time.monotonic() < deadline, f"request {request_id} was never logged"
        time.sleep(0.02)
    return text


# --- 1. The fuzzer ----------------------------------------------------------------------------


def test_fuzzer_finds_no_server_error_and_no_answer_outside_the_schema(
    served: Served, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{served.base}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing,stateful",
        "--workers=1",
        f"--max-examples={FUZZ_EXAMPLES}",
        f"--seed={FUZZ_SEED}",
        *(f"--header={name}: {value}" for name, value in served.key.items()),
        "--request-timeout=10",
        "--generation-database=none",  # nothing of a run is kept for the next one
        "--report=json,ndjson",
        f"--report-json-path={reports / 'run.json'}",
        f"--report-ndjson-path={reports / 'events.ndjson'}",
        "--no-color",
    ]
    started = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=tmp_path,  # no schemathesis.toml of anyone else's applies
        env=clean_environment(COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=FUZZ_TIMEOUT,
        check=False,
    )
    elapsed = time.perf_counter() - started
    summary = fuzz_summary(result)
    assert (reports / "run.json").is_file(), summary
    run = json.loads((reports / "run.json").read_text())
    statuses = statuses_seen(reports / "events.ndjson")
    links = re.search(r"API Links:\s+(.+)", result.stdout)
    warned = sorted(name for name, items in run["warnings"].items() if items)
    phases = {name: phase["status"] for name, phase in run["phases"].items()}
    report(
        "schemathesis on the default project",
        run["test_cases"]["generated"],
        "cases",
        f"seed {FUZZ_SEED}, {FUZZ_EXAMPLES} examples per operation, {elapsed:.0f} s; "
        f"statuses {dict(sorted(statuses.items()))}; "
        f"phases {phases}"
        + (f"; API links {links.group(1).strip()}" if links else "")
        + (f"; warnings {', '.join(warned)}" if warned else ""),
    )

    assert result.returncode == 0, summary
    assert run["failures"] == [], summary
    assert run["errors"] == [], summary
    assert run["operations"]["tested"] == run["operations"]["total"] >= 12, run["operations"]
    assert run["phases"]["stateful"]["status"] == "success", run["phases"]
    assert not [status for status in statuses if int(status) >= 500], statuses
    assert {"200", "201", "204", "404", "422"} <= set(statuses), statuses  # it reached every path
    assert secret_of(served.key) not in settled_log(served)  # sent on every request, never logged


def fuzz_summary(result: subprocess.CompletedProcess[str]) -> str:
    """Schemathesis's own account of a run: its failures and errors through to its summary."""
    output = result.stdout
    starts = [output.find(banner) for banner in (" FAILURES ", " ERRORS ") if banner in output]
    start = output.rfind("\n", 0, min(starts)) + 1 if starts else max(0, len(output) - 8000)
    text = output[start:]
    if len(text) > 20000:
        text = f"{text[:12000]}\n[...]\n{text[-8000:]}"
    return (
        f"schemathesis exited {result.returncode}\n{text}\n--- stderr ---\n{result.stderr[-3000:]}"
    )


def statuses_seen(events: Path) -> Counter[str]:
    """How many responses of each status the run's NDJSON events record."""
    seen: dict[str, str] = {}
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished:
            continue
        for key, interaction in finished["recorder"].get("interactions", {}).items():
            response = interaction.get("response")
            if response is not None:
                seen[key] = str(response["status_code"])
    return Counter(seen.values())


# --- 2. Named probes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One hostile request and the answer the contract documents for it."""

    method: str
    target: str
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    host: str | None = None
    names: tuple[str | int, ...] | None = None  # the `loc` a 422 lists
    allow: frozenset[str] = frozenset()  # methods a 405's Allow header lists
    chunked: bool = False
    declared_length: int | None = None


OUT_OF_RANGE: dict[str, int | str] = {
    "0": 0,
    "-1": -1,
    "2**53": 2**53,
    "2**63": 2**63,
    "-2**63-1": -(2**63) - 1,
    "10**40": 10**40,
}
NOT_INTEGERS: dict[str, int | str] = {"word": "abc", "fraction": "1.5", "nul": "%00"}
ABSENT_IN_RANGE = {"2**31": 2**31, "2**53-1": MAX_ID}
BAD_OFFSETS: dict[str, int | str] = {
    "-1": -1,
    "2**53": 2**53,
    "2**63": 2**63,
    "10**40": 10**40,
    "word": "abc",
}
GOOD_OFFSETS = {"0": 0, "2**31": 2**31, "2**53-1": MAX_ID}
ITEM = {"users": "user_id", "posts": "post_id"}
CHANGE = {"users": {"full_name": "Probe"}, "posts": {"title": "Probe"}}
ITEM_METHODS = frozenset({"GET", "PATCH", "DELETE"})
LIST_METHODS = frozenset({"GET", "POST"})


def new_email() -> str:
    """An address no other probe or run has taken."""
    return f"probe-{uuid.uuid4().hex}@example.com"


def post_of(author_id: object, **fields: object) -> bytes:
    """A post body with one field changed."""
    return as_json({"title": "Probe", "body": "Probe", "author_id": author_id, **fields})


def exactly(size: int, prefix: bytes, suffix: bytes) -> bytes:
    """A body of exactly `size` bytes: `prefix`, padding and `suffix`."""
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


def case(label: str, method: str, target: str, status: int, body: bytes = b"", **kw: Any) -> Any:
    """A probe as a pytest parameter named `label`."""
    return pytest.param(Probe(method, target, status, body, **kw), id=label)


def id_probes() -> Iterator[Any]:
    """Every id (path, query, body) and offset past what a bigint holds; limit out of range."""
    bad = {**OUT_OF_RANGE, **NOT_INTEGERS}
    for resource, name in ITEM.items():
        for method in sorted(ITEM_METHODS):
            body = as_json(CHANGE[resource]) if method == "PATCH" else b""
            for label, value in bad.items():
                path, where = f"/api/v1/{resource}/{value}", ("path", name)
                yield case(f"{method} {resource}/{label}", method, path, 422, body, names=where)
            for label, value in ABSENT_IN_RANGE.items():
                path = f"/api/v1/{resource}/{value}"
                yield case(f"{method} {resource}/{label}", method, path, 404, body)
    for label, value in bad.items():
        target, where = f"/api/v1/posts?author_id={value}", ("query", "author_id")
        yield case(f"GET posts?author_id={label}", "GET", target, 422, names=where)
    for label, value in ABSENT_IN_RANGE.items():
        yield case(f"GET posts?author_id={label}", "GET", f"/api/v1/posts?author_id={value}", 200)
    not_ids: dict[str, object] = {**OUT_OF_RANGE, "fraction": 1.5}
    for label, number in not_ids.items():
        body, where = post_of(number), ("body", "author_id")
        yield case(f"POST posts author_id={label}", "POST", "/api/v1/posts", 422, body, names=where)
    for label, value in ABSENT_IN_RANGE.items():
        yield case(f"POST posts author_id={label}", "POST", "/api/v1/posts", 409, post_of(value))
    for resource in ITEM:
        for label, offset in BAD_OFFSETS.items():
            target, where = f"/api/v1/{resource}?offset={offset}", ("query", "offset")
            yield case(f"GET {resource}?offset={label}", "GET", target, 422, names=where)
        for label, offset in GOOD_OFFSETS.items():
            target = f"/api/v1/{resource}?offset={offset}"
            yield case(f"GET {resource}?offset={label}", "GET", target, 200)
        for limit in ("0", "-1", "101", str(2**31), str(2**63), "abc"):
            target, where = f"/api/v1/{resource}?limit={limit}", ("query", "limit")
            yield case(f"GET {resource}?limit={limit}", "GET", target, 422, names=where)
        for limit in ("1", "100"):
            yield case(
                f"GET {resource}?limit={limit}", "GET", f"/api/v1/{resource}?limit={limit}", 200
            )


def body_probes() -> Iterator[Any]:
    """Bodies too large, unparseable, too deep, too long, with NUL characters or of no JSON."""
    ten_mb = exactly(10 * MIB, b'{"email": "a@example.com", "full_name": "', b'"}')
    yield case("10 MB body", "POST", USERS, 413, ten_mb)
    claimed = {"declared_length": BODY_LIMIT + 1}
    yield case("Content-Length past the limit", "POST", USERS, 413, b'{"email": ', **claimed)
    past = exactly(2 * MIB, b'{"email": "a@example.com", "full_name": "', b'"}')
    yield case("chunked past the limit", "POST", USERS, 413, past, chunked=True)
    small = as_json({"email": new_email(), "full_name": "Chunked"})
    yield case("chunked within the limit", "POST", USERS, 201, small, chunked=True)
    at_limit = exactly(BODY_LIMIT, f'{{"email": "{new_email()}", "full_name": "'.encode(), b'"}')
    full_name = ("body", "full_name")
    yield case("body at the limit", "POST", USERS, 422, at_limit, names=full_name)
    depth = 100_000
    yield case("nested lists", "POST", USERS, 400, b"[" * depth + b"]" * depth)
    yield case("nested objects", "POST", USERS, 400, b'{"a": ' * depth + b"1" + b"}" * depth)
    yield case("invalid JSON", "POST", USERS, 400, b'{"email": "a@example.com", ')
    invalid_utf8 = b'{"email": "\xff\xfe@example.com", "full_name": "\xc3"}'
    yield case("invalid UTF-8", "POST", USERS, 400, invalid_utf8)
    yield case("JSON that is no object", "POST", USERS, 422, b"[]", names=("body",))
    for name, value in {"email": "a\x00b@example.com", "full_name": "a\x00b"}.items():
        body = as_json({"email": new_email(), "full_name": "Probe", name: value})
        yield case(f"NUL in users {name}", "POST", USERS, 422, body, names=("body", name))
        yield case(
            f"NUL in users PATCH {name}",
            "PATCH",
            f"{USERS}/1",
            422,
            as_json({name: value}),
            names=("body", name),
        )
    for name in ("title", "body"):
        yield case(
            f"NUL in posts {name}",
            "POST",
            POSTS,
            422,
            post_of(1, **{name: "a\x00b"}),
            names=("body", name),
        )
        yield case(
            f"NUL in posts PATCH {name}",
            "PATCH",
            f"{POSTS}/1",
            422,
            as_json({name: "a\x00b"}),
            names=("body", name),
        )
    too_long = {
        (USERS, "email"): "a" * 310 + "@example.com",
        (USERS, "full_name"): "a" * 201,
        (POSTS, "title"): "a" * 201,
        (POSTS, "body"): "a" * 10_001,
    }
    for (target, name), value in too_long.items():
        base = (
            {"email": new_email(), "full_name": "Probe"}
            if target == USERS
            else {"title": "Probe", "body": "Probe", "author_id": 1}
        )
        body = as_json({**base, name: value})
        label = f"{target.rsplit('/', 1)[1]} {name} too long"
        yield case(label, "POST", target, 422, body, names=("body", name))


def protocol_probes() -> Iterator[Any]:
    """Wrong content types, wrong methods, unknown paths and unknown hosts."""
    user = as_json({"email": new_email(), "full_name": "Probe"})
    for label, content_type in {
        "text/plain": "text/plain",
        "form": "application/x-www-form-urlencoded",
        "multipart": "multipart/form-data; boundary=x",
        "no Content-Type": None,
    }.items():
        yield case(f"POST users as {label}", "POST", USERS, 415, user, content_type=content_type)
    yield case(
        "PATCH users as text/plain",
        "PATCH",
        f"{USERS}/1",
        415,
        as_json({"full_name": "P"}),
        content_type="text/plain",
    )
    yield case(
        "POST posts as text/plain", "POST", POSTS, 415, post_of(1), content_type="text/plain"
    )
    charset = as_json({"email": new_email(), "full_name": "Charset"})
    yield case(
        "POST users as JSON with a charset",
        "POST",
        USERS,
        201,
        charset,
        content_type="application/json; charset=utf-8",
    )
    for method, target, allow in (
        ("PUT", f"{USERS}/1", ITEM_METHODS),
        ("POST", f"{USERS}/1", ITEM_METHODS),
        ("PUT", f"{POSTS}/1", ITEM_METHODS),
        ("PUT", USERS, LIST_METHODS),
        ("DELETE", POSTS, LIST_METHODS),
        ("PATCH", "/health/live", frozenset({"GET"})),
    ):
        yield case(f"{method} {target}", method, target, 405, allow=allow)
    for method, target in (
        ("GET", "/api/v1/nothing"),
        ("POST", "/nothing"),
        ("GET", f"{USERS}/1/posts"),
    ):
        yield case(f"{method} {target}", method, target, 404)
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example:80"):
        yield case(f"Host {host}", "GET", USERS, 400, host=host)
    yield case("Host evil.example on a POST", "POST", USERS, 400, user, host="evil.example")
    yield case("Host localhost", "GET", USERS, 200, host="localhost")


@pytest.fixture(scope="module")
def document(served: Served) -> dict[str, Any]:
    """The served OpenAPI document."""
    status, body, _ = call("GET", f"{served.base}/openapi.json")
    assert status == 200
    documented: dict[str, Any] = body
    return documented


def documented_statuses(document: dict[str, Any], method: str, target: str) -> set[str] | None:
    """The statuses the document lists for the operation `target` names; None if it names none."""
    path = target.split("?", 1)[0]
    for template, operations in document["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in operations:
            return set(operations[method.lower()]["responses"])
    return None


@pytest.mark.parametrize("probe", [*id_probes(), *body_probes(), *protocol_probes()])
def test_hostile_request_gets_its_documented_answer(
    served: Served, document: dict[str, Any], probe: Probe
) -> None:
    headers = {**served.key}
    if probe.content_type:
        headers["Content-Type"] = probe.content_type
    if probe.host is not None:
        headers["Host"] = probe.host
    reply = exchange(
        served.port,
        probe.method,
        probe.target,
        probe.body,
        headers,
        chunked=probe.chunked,
        declared_length=probe.declared_length,
    )
    request = f"{probe.method} {probe.target[:200]} ({len(probe.body)} bytes) -> {reply}"

    assert reply.status == probe.status, request
    statuses = documented_statuses(document, probe.method, probe.target)
    if statuses is not None:  # an operation of the document: its answer is listed there
        assert str(reply.status) in statuses, (
            f"{request}: undocumented, the document lists {statuses}"
        )
    if probe.status < 400:
        assert reply.headers["content-type"].startswith("application/json"), request
        return
    assert reply.headers["content-type"].startswith(PROBLEM_JSON), request
    problem = reply.json()
    assert set(problem) >= PROBLEM_FIELDS, request
    assert problem["status"] == probe.status, request
    assert problem["request_id"] == reply.headers["x-request-id"], request
    if probe.names is not None:
        errors = problem.get("errors", [])
        assert list(probe.names) in [error.get("loc") for error in errors], request
        assert all(set(error) >= {"loc", "msg", "type"} for error in errors), request
    if probe.status == 409:
        assert isinstance(problem.get("constraint"), str), request
    if probe.status == 405:
        allowed = {method.strip() for method in reply.headers.get("allow", "").split(",")}
        assert probe.allow <= allowed, request
        assert probe.method not in allowed, request


# --- 3. Credentials --------------------------------------------------------------------------

# uvicorn bounds no header with httptools (h11 would stop at 16 KiB): 64 KiB reaches the app.
HUGE = 64 * 1024
SCHEME_WANTED, TOKEN_INVALID = "Bearer", 'Bearer error="invalid_token"'
# Each hostile credential by name, and its answer: a 401 problem with this challenge, or None
# where the HTTP parser refuses a control byte (RFC 9110) with a 400 before the app sees it.
CREDENTIALS: dict[str, str | None] = {
    "no Authorization header": SCHEME_WANTED,
    "an empty header": SCHEME_WANTED,
    "Bearer and no credential": SCHEME_WANTED,
    "Bearer, 64 KiB": TOKEN_INVALID,
    "Bearer with a NUL": None,
    "Bearer with an escape": None,
    "Bearer with a DEL": None,
    "Bearer with a tab inside": TOKEN_INVALID,  # a tab is allowed in a header value
    "Bearer with non-ASCII": TOKEN_INVALID,
    "Basic": SCHEME_WANTED,
    "a well-formed unknown key": TOKEN_INVALID,
    "the key's lookup, a wrong secret": TOKEN_INVALID,
    "the key, then more": TOKEN_INVALID,
}


def credential(label: str, marker: str, key: dict[str, str]) -> str | None:
    """The Authorization header `label` names (None: no header), carrying `marker` where it can."""
    secret = f"{marker}{'x' * 43}"[:43]  # a secret's shape: 43 URL-safe characters
    basic = base64.b64encode(f"{marker}:{marker}".encode()).decode()
    return {
        "no Authorization header": None,
        "an empty header": "",
        "Bearer and no credential": "Bearer ",
        "Bearer, 64 KiB": f"Bearer {marker}".ljust(HUGE, "A"),
        "Bearer with a NUL": f"Bearer {marker}\x00{marker}",
        "Bearer with an escape": f"Bearer {marker}\x1b[2J",
        "Bearer with a DEL": f"Bearer {marker}\x7f",
        "Bearer with a tab inside": f"Bearer {marker}\t{marker}",
        "Bearer with non-ASCII": f"Bearer {marker}-ключ-é",
        "Basic": f"Basic {basic}",
        "a well-formed unknown key": f"Bearer ak_{secrets.token_hex(6)}_{secret}",
        "the key's lookup, a wrong secret": f"Bearer ak_{lookup_of(key)}_{secret}",
        "the key, then more": f"{key['Authorization']}{marker}",
    }[label]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("label", CREDENTIALS)
def test_a_bad_credential_is_refused_with_a_4xx_and_never_logged(
    served: Served, document: dict[str, Any], label: str, method: str
) -> None:
    marker = f"mk{secrets.token_hex(8)}"
    value = credential(label, marker, served.key)
    headers = {"Content-Type": "application/json"}
    if value is not None:
        headers["Authorization"] = value
    body = as_json({"email": new_email(), "full_name": marker}) if method == "POST" else b""
    reply = exchange(served.port, method, USERS, body, headers)
    challenge = CREDENTIALS[label]
    request = f"{method} {USERS} with {label} -> {reply}"

    if challenge is None:  # refused by the HTTP parser: never a 5xx, never the app's business
        assert reply.status == 400, request
    else:
        assert reply.status == 401, request
        assert "401" in (documented_statuses(document, method, USERS) or set()), request
        assert reply.headers["content-type"].startswith(PROBLEM_JSON), request
        assert reply.headers["www-authenticate"] == challenge, request
        problem = reply.json()
        assert set(problem) >= PROBLEM_FIELDS, request
        assert problem["status"] == 401, request
        assert problem["request_id"] == reply.headers["x-request-id"], request
    log = settled_log(served)
    sent = (value or "").partition(" ")[2].strip()  # the credential, without its scheme
    assert marker not in log, label
    assert not sent or sent not in log, label
    assert secret_of(served.key) not in log, label


# --- 4. Nothing of a request reaches a log line ----------------------------------------------

LOCK_HOLDER = "keel-hostile-lock"
LOCK_USERS = "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;"
USERS_LOCKED = (
    "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' "
    "AND relation = 'users'::regclass"
)
RELEASE_LOCK = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = 'keel-hostile-lock'"
)
RAW_ID = re.compile(r"/\d+(/|\?|\s|$)")


@dataclass(frozen=True)
class Marked:
    """A request of the marker test and what it should get.

    `template` is the route its access line names (None where routing may not run); `fault`
    names the database fault it is sent in ("timeout", "outage"); `authorization`, when given,
    replaces the key to read and write the requests send ("": no Authorization header).
    """

    label: str
    method: str
    target: str
    expected: int
    template: str | None
    body: object = None
    raw: bytes | None = None
    content_type: str = "application/json"
    host: str | None = None
    fault: str | None = None
    authorization: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A marked request and the reply it got."""

    request: Marked
    reply: Reply


def marked_headers(marker: str) -> dict[str, str]:
    """Headers that each carry the marker, as a client's credentials and metadata would.

    The Authorization header carries a real key (`send_marked`), else nothing would get past
    authentication; requests with a marked credential are among the `credential_errors`.
    """
    return {
        "Cookie": f"session={marker}; theme={marker}",
        "X-Api-Key": marker,
        "User-Agent": f"hostile/{marker}",
        "Referer": f"http://{marker}.example/{marker}",
        "X-Request-ID": f"{marker}-not-a-request-id",  # refused, so a new id is made
        "X-Forwarded-For": marker,  # believed from 127.0.0.1: it becomes the client's address
        "X-Marker": marker,
    }


def send_marked(port: int, marker: str, key: dict[str, str], request: Marked) -> Outcome:
    """Send a marked request: its JSON body (or raw bytes), `key` and every marked header."""
    payload = request.raw if request.raw is not None else b""
    if request.raw is None and request.body is not None:
        payload = as_json(request.body)
    headers = {**marked_headers(marker), "Content-Type": request.content_type}
    if request.authorization is None:
        headers.update(key)
    elif request.authorization:
        headers["Authorization"] = request.authorization
    if request.host is not None:
        headers["Host"] = request.host
    return Outcome(request, exchange(port, request.method, request.target, payload, headers))


def successes(marker: str, user: str, post: str, user_id: int) -> list[Marked]:
    """Requests that succeed, each with the marker in its values."""
    return [
        Marked("get user", "GET", user, 200, USER_ITEM),
        Marked("list users", "GET", f"{USERS}?limit=5&offset=0&{marker}={marker}", 200, USERS),
        Marked("rename user", "PATCH", user, 200, USER_ITEM, {"full_name": f"Lovelace {marker}"}),
        Marked("clear full_name", "PATCH", user, 200, USER_ITEM, {"full_name": None}),
        Marked("list posts", "GET", f"{POSTS}?author_id={user_id}&q={marker}", 200, POSTS),
        Marked("get post", "GET", post, 200, POST_ITEM),
        Marked("edit post", "PATCH", post, 200, POST_ITEM, {"body": f"{marker} edited"}),
        Marked("delete post", "DELETE", post, 204, POST_ITEM),
    ]


def client_errors(marker: str, number: str, email: str, user_id: int) -> list[Marked]:
    """Requests refused with 400, 404, 405, 409, 413, 415 and 422, marked everywhere."""
    named = {"email": email, "full_name": marker}
    big = {"email": email, "full_name": marker * (2 * MIB // len(marker))}
    return [
        Marked("unknown path", "GET", f"/api/v1/{marker}?{marker}={number}", 404, None),
        Marked("missing user", "GET", f"{USERS}/{number}", 404, USER_ITEM),
        Marked("missing post", "DELETE", f"{POSTS}/{number}", 404, POST_ITEM),
        Marked("wrong method", "PUT", f"{USERS}/{number}", 405, None, named),
        Marked("email taken", "POST", USERS, 409, USERS, named),
        Marked(
            "no such author",
            "POST",
            POSTS,
            409,
            POSTS,
            {"title": marker, "body": marker, "author_id": int(number)},
        ),
        Marked("body too large", "POST", USERS, 413, None, big),
        Marked("not JSON", "POST", USERS, 415, None, named, content_type=f"text/{marker}"),
        Marked(
            "invalid email",
            "POST",
            USERS,
            422,
            USERS,
            {"email": f"not-an-email-{marker}", "full_name": marker},
        ),
        Marked("id not a number", "GET", f"{USERS}/{marker}", 422, USER_ITEM),
        Marked("limit not a number", "GET", f"{USERS}?limit={marker}&offset={number}", 422, USERS),
        Marked(
            "NUL in a title",
            "POST",
            POSTS,
            422,
            POSTS,
            {"title": f"{marker}\x00", "body": marker, "author_id": user_id},
        ),
        Marked("invalid JSON", "POST", USERS, 400, None, raw=f'{{"email": "{marker}", '.encode()),
        Marked(
            "invalid UTF-8",
            "POST",
            USERS,
            400,
            None,
            raw=b'{"email": "\xff' + marker.encode() + b'"}',
        ),
        Marked("unknown host", "GET", USERS, 400, None, host=f"{marker}.example"),
    ]


def credential_errors(
    marker: str, lookup: str, reader: dict[str, str], email: str, user: str
) -> list[Marked]:
    """Requests refused for their credential (401) or its scope (403), the marker in them.

    `lookup` is the real key's, `reader` the header of a key that may only read.
    """
    secret = f"{marker}{'x' * 43}"[:43]
    named = {"email": email, "full_name": marker}
    return [
        Marked("no credential", "GET", f"{USERS}?{marker}=1", 401, USERS, authorization=""),
        Marked("made-up token", "GET", user, 401, USER_ITEM, authorization=f"Bearer {marker}"),
        Marked("Basic", "POST", USERS, 401, USERS, named, authorization=f"Basic {marker}"),
        Marked(
            "unknown key",
            "PATCH",
            user,
            401,
            USER_ITEM,
            {"full_name": marker},
            authorization=f"Bearer ak_{secrets.token_hex(6)}_{secret}",
        ),
        Marked(
            "wrong secret",
            "DELETE",
            user,
            401,
            USER_ITEM,
            authorization=f"Bearer ak_{lookup}_{secret}",
        ),
        Marked(
            "read-only key writes",
            "POST",
            USERS,
            403,
            USERS,
            named,
            authorization=reader["Authorization"],
        ),
    ]


def while_faulted(
    fault: str, label: str, expected: int, marker: str, email: str, user: str
) -> list[Marked]:
    """A read and an insert of a user, sent during `fault`, each answering `expected`."""
    return [
        Marked(f"read, {label}", "GET", user, expected, USER_ITEM, fault=fault),
        Marked(
            f"insert, {label}",
            "POST",
            USERS,
            expected,
            USERS,
            {"email": email, "full_name": marker},
            fault=fault,
        ),
    ]


def while_locked(marker: str, number: str, email: str, user: str) -> list[Marked]:
    """Requests sent while another session holds `users`: each statement times out (504)."""
    fault = "timeout"
    return [
        *while_faulted(fault, "locked", 504, marker, email, user),
        Marked(
            "page, locked", "GET", f"{USERS}?offset={number}&{marker}=1", 504, USERS, fault=fault
        ),
        Marked("update, locked", "PATCH", user, 504, USER_ITEM, {"full_name": marker}, fault=fault),
    ]


def while_down(marker: str, number: str, email: str, user: str) -> list[Marked]:
    """Requests sent while the database is down: 503 with Retry-After, one log line each."""
    fault = "outage"
    return [
        *while_faulted(fault, "down", 503, marker, email, user),
        Marked(
            "page, down", "GET", f"{POSTS}?author_id={number}&{marker}=1", 503, POSTS, fault=fault
        ),
        Marked(
            "update, down",
            "PATCH",
            f"{POSTS}/{number}",
            503,
            POST_ITEM,
            {"title": marker},
            fault=fault,
        ),
        Marked("delete, down", "DELETE", user, 503, USER_ITEM, fault=fault),
        Marked("readiness, down", "GET", "/health/ready", 503, "/health/ready"),
    ]


def test_no_request_value_reaches_a_log_line(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    marker = f"mk{secrets.token_hex(8)}"  # "mk": never part of a hex request id
    # A 15-digit id no row has: below 2**53, so it passes any bound an id may have.
    number = str(10**14 + secrets.randbelow(9 * 10**14))
    email = f"{marker}@example.com"
    project = rendered("defaults")
    command = str(uv_sync(project) / package_of(project))
    port = free_port()
    log = tmp_path / "serve.log"
    outcomes: list[Outcome] = []

    def send(request: Marked) -> Reply:  # with `key`, issued once the service runs
        outcomes.append(send_marked(port, marker, key, request))
        return outcomes[-1].reply

    # A PostgreSQL server of its own, which the test stops to cut the service off.
    with load().LocalPostgres() as database:
        env = clean_environment(
            DATABASE_URL=database.create_database("markers"),
            PORT=str(port),
            ENVIRONMENT="production",
            LOG_FORMAT="json",
            DATABASE_ECHO="true",
            DATABASE_STATEMENT_TIMEOUT_MS="300",
            DATABASE_POOL_TIMEOUT="1",
            API_KEY_CACHE_SECONDS="0",  # every request checks its key, in the faults too
        )
        with migrated_and_serving(command, project, env, log) as service:
            key = issue_key(command, project, env, "read", "write", name="markers")
            reader = issue_key(command, project, env, "read", name="markers-reader")
            author = {"email": email, "full_name": f"Ada {marker}"}
            user_id = send(Marked("create user", "POST", USERS, 201, USERS, author)).json()["id"]
            post = {"title": marker, "body": marker * 20, "author_id": user_id}
            post_id = send(Marked("create post", "POST", POSTS, 201, POSTS, post)).json()["id"]
            user = f"{USERS}/{user_id}"
            for request in successes(marker, user, f"{POSTS}/{post_id}", user_id):
                send(request)
            for request in client_errors(marker, number, email, user_id):
                send(request)
            for request in credential_errors(marker, lookup_of(key), reader, f"z{email}", user):
                send(request)
            with users_locked(database):
                for request in while_locked(marker, number, f"x{email}", user):
                    send(request)
            send(Marked("read after the lock", "GET", user, 200, USER_ITEM))
            database.stop()
            for request in while_down(marker, number, f"y{email}", user):
                send(request)
            stopped_cleanly = stop(service, signal.SIGTERM)

    text = log.read_text()
    findings = [
        f"{outcome.request.label}: {outcome.request.method} {outcome.request.target[:100]} "
        f"answered {outcome.reply}, not {outcome.request.expected}"
        for outcome in outcomes
        if outcome.reply.status != outcome.request.expected
    ]
    for outcome in (outcome for outcome in outcomes if outcome.request.fault):
        label, headers = outcome.request.label, outcome.reply.headers
        if not headers.get("content-type", "").startswith(PROBLEM_JSON):
            findings.append(f"{label}: not a problem: {outcome.reply}")
        if outcome.reply.status == 503 and "retry-after" not in headers:
            findings.append(f"{label}: a 503 without Retry-After: {outcome.reply}")
    # Neither key's secret either, though every request sent one.
    findings += log_findings(text, [marker, number, secret_of(key), secret_of(reader)], outcomes)
    if not stopped_cleanly:
        findings.append("the service did not exit cleanly on SIGTERM after the outage")
    report("marker test", len(outcomes), "requests", f"{len(text.splitlines())} log lines")
    assert not findings, "\n".join(findings)


@contextlib.contextmanager
def users_locked(database: Any) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on `users` from another session while the block runs."""
    psql = [str(load().find_bin_dir() / "psql"), "-X", "-h", "127.0.0.1", "-p", str(database.port)]
    holder = subprocess.Popen(
        [*psql, "-U", "postgres", "-d", "markers", "-c", LOCK_USERS],
        env=clean_environment(PGAPPNAME=LOCK_HOLDER),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while database.psql(USERS_LOCKED, database="markers") != "1":
            if time.monotonic() > deadline or holder.poll() is not None:
                raise AssertionError("the lock holder never got its lock")
            time.sleep(0.02)
        yield
    finally:
        database.psql(RELEASE_LOCK)
        holder.wait(10)


def log_findings(text: str, markers: list[str], outcomes: list[Outcome]) -> list[str]:
    """What the service's log got wrong: request values, access lines, tracebacks, floods."""
    findings = [
        f"a log line carries a request value: {line[:400]}"
        for line in text.splitlines()
        if any(marker in line for marker in markers)
    ]
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            findings.append(f"a log line is not JSON: {line[:200]}")
    echoed = [record for record in records if record.get("name") == "sqlalchemy.engine.Engine"]
    if not any("INSERT INTO users" in record.get("message", "") for record in echoed):
        findings.append("DATABASE_ECHO=true logged no INSERT INTO users")
    by_request: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_request.setdefault(str(record.get("request_id")), []).append(record)
        if "exc_info" in record or "Traceback" in str(record.get("message")):
            findings.append(f"a traceback, though no request should fail unexpectedly: {record}")
        if record.get("name") == "access" and RAW_ID.search(str(record.get("message"))):
            findings.append(f"an access line names a raw path: {record['message']}")
    for request, reply in ((outcome.request, outcome.reply) for outcome in outcomes):
        request_id = reply.headers.get("x-request-id")
        if request_id is None:
            findings.append(f"{request.label}: no X-Request-ID in {reply}")
            continue
        own = by_request.get(request_id, [])
        access = [record["message"] for record in own if record.get("name") == "access"]
        route = f" {request.template}" if request.template else ""
        expected = f"{request.method}{route} {reply.status} "
        if len(access) != 1 or not (
            access[0].startswith(expected) if route else f" {reply.status} " in access[0]
        ):
            findings.append(f"{request.label}: access lines {access}, expected one {expected!r}")
        others = [
            record["message"]
            for record in own
            if record.get("name") not in {"access", "sqlalchemy.engine.Engine"}
        ]
        if request.fault == "outage" and len(others) > 1:
            findings.append(
                f"{request.label}: {len(others)} lines beside its access line: {others}"
            )
    return findings
