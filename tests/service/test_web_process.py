"""The web process as the Procfile runs it in production: slow clients cannot hold its workers, and it logs safely."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.consent.conftest import POLICY

pytestmark = pytest.mark.postgres_only  # production runs on PostgreSQL (PRIVACY_ENV=production requires it)

WORKERS = 2
SLOW_CLIENTS = 40  # far more than there are workers


def _raw(web, request: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    conn.sendall(request)
    return conn


def _healthz_seconds(web) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(web.base + "/healthz", timeout=5) as r:
        assert r.status == 200
    return time.perf_counter() - started


def test_slow_request_bodies_cannot_delay_healthz(web_process, make_key):
    web = web_process(WEB_CONCURRENCY=str(WORKERS))
    key = make_key("app-a", "consent:write")["Authorization"]
    head = (f"POST /v1/consents HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{").encode()
    slow = [_raw(web, head) for _ in range(SLOW_CLIENTS)]  # each announced 1,000 bytes and sent 1
    try:
        time.sleep(0.5)  # time for every one of them to reach the server
        delays = [_healthz_seconds(web) for _ in range(10)]
        assert max(delays) < 1.0, delays
    finally:
        for conn in slow:
            conn.close()


def test_requests_still_reach_the_app_with_their_bodies(web_process, make_key):
    web = web_process(WEB_CONCURRENCY=str(WORKERS))
    headers = {**make_key("app-a", "admin"), "Content-Type": "application/json"}
    body = json.dumps(POLICY).encode()
    req = urllib.request.Request(web.base + "/v1/policies", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201 and json.load(r)["key"] == "privacy"
    # Over MAX_CONTENT_LENGTH: refused before a worker sees it, in the API's own error format.
    big = urllib.request.Request(web.base + "/v1/policies", data=b"{" + b" " * 70_000 + b"}", headers=headers,
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(big, timeout=10)
    assert err.value.code == 413
    assert json.load(err.value)["code"] == 413


def test_a_long_url_reaches_the_app_and_a_too_long_one_is_a_json_414(web_process):
    """Up to nginx's 8 KB request line the app answers (here its JSON 404), not gunicorn's HTML 400 at 4 KB;
    beyond, nginx answers 414 in the API's error format, not its HTML page."""
    web = web_process(WEB_CONCURRENCY="1")
    for length, status in ((6_000, 404), (70_000, 414)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(
                f"{web.base}/governance/erasure-acks/{'a' * 64}/{'b' * length}", method="POST"), timeout=10)
        assert err.value.code == status
        assert err.value.headers["Content-Type"].startswith("application/json")
        assert json.load(err.value)["code"] == status


def _answer(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    conn.close()
    return data


def test_a_nul_byte_in_a_header_is_refused_and_logged(web_process):
    web = web_process(WEB_CONCURRENCY="1")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Probe: a\x00b\r\n\r\n"
    assert _answer(_raw(web, request)).startswith(b"HTTP/1.1 400")  # nginx refuses it
    # Straight to gunicorn, as through a proxy that passed it on: refused, and gunicorn's own line is written.
    direct = socket.socket(socket.AF_UNIX)
    direct.settimeout(10)
    direct.connect(str(web.run_dir / "gunicorn.sock"))
    direct.sendall(request)
    assert _answer(direct).startswith(b"HTTP/1.1 400")
    deadline = time.monotonic() + 5
    while "Invalid request from" not in web.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    output = web.output()
    assert "Invalid request from" in output and "X-PROBE" in output, output
    assert "Logging error" not in output and "Traceback" not in output, output


def _get(web, path: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(web.base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_a_revoked_key_is_refused_by_every_worker_at_once(web_process, make_key, base_config):
    workers = 3
    web = web_process(WEB_CONCURRENCY=str(workers))
    admin = make_key("app-a", "admin")
    for path, body in (("/v1/policies", POLICY),
                       ("/v1/policies/privacy/versions", {"version": "1.0", "text": "t", "material": True})):
        req = urllib.request.Request(web.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={**admin, "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()
    headers = make_key("app-a", "consent:read")
    paths = ["/v1/consents/status?subject_id=u1&policy=privacy", "/v1/policies"]  # beneath Flask, and a route
    # Many requests on fresh connections: each worker answers some, from its key cache after its first.
    assert {_get(web, paths[i % 2], headers) for i in range(40 * workers)} == {200}

    env = {**os.environ, **base_config, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    key_id = headers["Authorization"].split("_")[1]
    subprocess.run(["flask", "--app", "wsgi", "keys", "revoke", key_id], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=60)
    returned = time.monotonic()
    answers: list[tuple[float, int]] = []

    def hammer(offset: int) -> None:
        i = offset
        while time.monotonic() - returned < 1.5:
            status = _get(web, paths[i % 2], headers)
            answers.append((time.monotonic() - returned, status))
            i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(2 * workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    late = [at for at, status in answers if status == 200]
    print(f"\n{len(answers)} requests after `keys revoke` returned; last 200 at "
          f"{1000 * max(late):.1f} ms" if late else f"\n{len(answers)} requests after `keys revoke`: no 200")
    assert len(answers) > 100
    assert {status for _, status in answers} <= {200, 401}
    # Only the notification's way to each worker is allowed for; the cache TTL (5 s) is not.
    assert not late or max(late) < 0.1, sorted(late)[-5:]


def _status_from(web, source: str, path: str) -> int:
    """GET `path` over a connection from the local address `source` (any 127.x.y.z reaches the server)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_rate_limits_count_each_client_address_behind_nginx(web_process, make_key):
    """gunicorn hears every client through nginx's unix socket: the limits must read the address nginx forwards,
    or one busy client would lock everybody out (as it did: every client counted as one)."""
    web = web_process(WEB_CONCURRENCY="1")  # in-memory counts are per worker
    make_key("shop", "consent:write")
    unknown = "/privacy/shop/link/" + "C" * 43
    answers = [_status_from(web, "127.0.0.2", unknown) for _ in range(31)]
    assert answers[:30] == [404] * 30 and answers[30] == 429, answers
    assert _status_from(web, "127.0.0.3", unknown) == 404  # another client is not held back
