"""A small OpenID Connect provider on localhost for the tests (a real HTTP server in a thread): discovery, JWKS,
the authorization endpoint (signs in whoever the test says, at once), and the token endpoint, which checks the
client's secret, the code, the redirect URI and PKCE, and signs ID tokens with RS256."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Provider:
    """The provider's state: the registered client, who signs in next, and the codes it issued."""

    client_id: str = "console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-1"}))
    user: dict[str, Any] = field(default_factory=dict)  # the next sign-in's claims (sub, email, groups, amr...)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    issuer: str = ""
    tamper: str | None = None  # "audience", "issuer", "nonce", "signature", "expired": the next ID token is wrong

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]}

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect back to the client, with a code for `user`."""
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            raise ValueError("unknown client or response type")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": query["redirect_uri"], "nonce": query.get("nonce"),
                            "challenge": query.get("code_challenge"), "user": dict(self.user)}
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        issued = self.codes.pop(form.get("code", ""), None)  # a code works once
        if issued is None or form.get("redirect_uri") != issued["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != issued["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": self._id_token(issued)}

    def _id_token(self, issued: dict[str, Any]) -> str:
        now, wrong = int(time.time()), self.tamper
        self.tamper = None
        claims = {"iss": self.issuer + ("/other" if wrong == "issuer" else ""),
                  "aud": "someone-else" if wrong == "audience" else self.client_id,
                  "iat": now - (7200 if wrong == "expired" else 0),
                  "exp": now + (-3600 if wrong == "expired" else 300),
                  "nonce": "replayed" if wrong == "nonce" else issued["nonce"], **issued["user"]}
        key = RSAKey.generate_key(2048, parameters={"kid": "test-1"}) if wrong == "signature" else self.key
        return jwt.encode({"alg": "RS256", "kid": "test-1"}, claims, key)


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/.well-known/openid-configuration":
            self._json(200, self.provider.metadata())
        elif parts.path == "/jwks":
            self._json(200, {"keys": [self.provider.key.as_dict(private=False)]})
        elif parts.path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            try:
                location = self.provider.authorize(query)
            except (ValueError, KeyError):
                self._json(400, {"error": "invalid_request"})
                return
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path != "/token":
            self._json(404, {"error": "not_found"})
            return
        self._json(*self.provider.token(form, self.headers.get("Authorization")))


class OidcProvider:
    """Start with `start()`; `provider` is what the test steers; `url` is the issuer."""

    def __init__(self) -> None:
        self.provider = Provider()
        handler = type("Handler", (_Handler,), {"provider": self.provider})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.provider.issuer = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, name="oidc-provider", daemon=True)

    def start(self) -> OidcProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
