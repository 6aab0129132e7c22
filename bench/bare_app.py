"""The baseline for bench/consent.py: a plain Flask app whose one route returns a small JSON body."""

from __future__ import annotations

from typing import Any

from flask import Flask

app = Flask(__name__)


@app.get("/ping")
def ping() -> Any:
    return {"status": "ok", "consent_required": False}
