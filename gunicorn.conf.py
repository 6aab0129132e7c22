"""gunicorn settings of the `web` process (Procfile): sync workers on a unix socket, behind an nginx that the
gunicorn master starts and stops, and that reads whole requests so a slow client never holds a worker.

Environment: PORT (8000), WEB_LISTEN (0.0.0.0:$PORT, nginx's listen address), WEB_CONCURRENCY (4 workers),
WEB_RUN_DIR (sockets, pid and nginx's temporary files; default <tmp>/privacy-web-$PORT), NGINX (the binary),
WEB_PROXY=none (gunicorn listens on WEB_LISTEN itself: only behind a proxy that already buffers requests).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from string import Template
from typing import Any

PORT = int(os.environ.get("PORT") or 8000)
LISTEN = os.environ.get("WEB_LISTEN") or f"0.0.0.0:{PORT}"
RUN_DIR = Path(os.environ.get("WEB_RUN_DIR") or Path(tempfile.gettempdir()) / f"privacy-web-{PORT}")
PROXIED = os.environ.get("WEB_PROXY", "nginx") != "none"
NGINX_TEMPLATE = Path(__file__).resolve().parent / "deploy" / "nginx.conf"
if PROXIED:
    # The workers (forked after this file is read) trust our nginx's X-Forwarded-For/-Proto: one hop, unless
    # the platform puts another proxy in front and says so.
    os.environ.setdefault("PROXY_HOPS", "1")

bind = [f"unix:{RUN_DIR}/gunicorn.sock"] if PROXIED else [LISTEN]
workers = int(os.environ.get("WEB_CONCURRENCY") or 4)
worker_class = "sync"  # the slow-client protection is nginx's buffering; the bench measured gthread slower
timeout = 30
graceful_timeout = 30
# gunicorn's access lines carry the raw path and query (subject ids): the app writes its own (service/logs.py).
accesslog = None
control_socket = str(RUN_DIR / "gunicorn.ctl")  # not the per-user default, which two web processes would share
if PROXIED:
    # nginx refuses a request line longer than its 8 KB buffer with the API's JSON 414 (deploy/nginx.conf); a
    # shorter one must not meet gunicorn's own limit (4,094 by default, answered with an HTML 400).
    limit_request_line = 8190  # gunicorn's largest


def on_starting(server: Any) -> None:
    # The directory holds the socket nginx forwards to: it must be this user's own, not one planted in /tmp.
    RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = RUN_DIR.lstat()
    if RUN_DIR.is_symlink() or info.st_uid != os.geteuid():
        raise SystemExit(f"WEB_RUN_DIR {RUN_DIR} is not a directory of this user's own")
    RUN_DIR.chmod(0o755)
    if os.geteuid() == 0:  # then nginx's workers run as `nobody`, who must reach the socket
        closed = [p for p in RUN_DIR.parents if not p.stat().st_mode & 0o001]
        if closed:
            raise SystemExit(f"WEB_RUN_DIR {RUN_DIR}: nginx's workers (user nobody) cannot pass {closed[0]}")


def when_ready(server: Any) -> None:
    """gunicorn listens: start nginx in front of it, and end gunicorn should nginx die (the platform restarts)."""
    if not PROXIED or server.cfg.bind != bind:
        return  # WEB_PROXY=none, or a --bind on the command line: plain gunicorn (this file is read from the cwd)
    from service.config import load_settings

    settings = load_settings()  # also fails start-up on a bad configuration before a request is taken
    values = {"run_dir": str(RUN_DIR), "listen": LISTEN, "max_body": str(settings.max_content_length),
              "read_timeout": str(timeout + 5)}
    config = RUN_DIR / "nginx.conf"
    # safe_substitute leaves nginx's own $variables alone.
    config.write_text(Template(NGINX_TEMPLATE.read_text()).safe_substitute(values))
    binary = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"nginx not found at {binary}: install it (Debian: apt-get install nginx) or set NGINX")
    # Its own process group, so its workers can be ended even when its master is gone.
    command = [binary, "-p", str(RUN_DIR), "-c", str(config), "-e", "stderr"]
    server.nginx = subprocess.Popen(command, process_group=0, preexec_fn=_end_with_parent)  # noqa: S603 - ours
    server.nginx_stopping = False
    threading.Thread(target=_watch, args=(server,), name="nginx-watch", daemon=True).start()
    server.log.info("nginx %s listening on %s, forwarding to %s", server.nginx.pid, LISTEN, bind[0])


def _watch(server: Any) -> None:
    code = server.nginx.wait()
    if not server.nginx_stopping:
        server.log.error("nginx exited (code %s): stopping the web process", code)
        _end_group(server.nginx.pid, signal.SIGKILL)  # workers a killed master left behind
        os.kill(os.getpid(), signal.SIGTERM)


def on_exit(server: Any) -> None:
    nginx = getattr(server, "nginx", None)
    if nginx is None:
        return
    server.nginx_stopping = True
    _end_group(nginx.pid, signal.SIGTERM)  # nginx's fast shutdown
    try:
        nginx.wait(10)
    except subprocess.TimeoutExpired:
        pass
    _end_group(nginx.pid, signal.SIGKILL)


def _end_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _end_with_parent() -> None:
    """In the nginx child: be sent SIGTERM when the gunicorn master dies, even by SIGKILL, so no nginx is left
    holding the port (Linux; elsewhere the master's on_exit is the only stop)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
