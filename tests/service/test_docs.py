"""/docs is served whole by the service: Swagger UI's files come from a package, not a CDN; nothing calls out."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit


def test_docs_reference_no_other_host_and_their_assets_are_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    # Any absolute URL at all, in an attribute or a script: the page must not name another host.
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui.css", "swagger-ui-bundle.js",
                                                      "swagger-ui-standalone-preset.js"}
    for asset in assets:
        url = urljoin("http://localhost/docs", asset)
        assert urlsplit(url).netloc == "localhost", asset
        got = client.get(urlsplit(url).path)
        assert got.status_code == 200, asset
        assert got.mimetype in ("text/css", "text/javascript", "application/javascript"), (asset, got.mimetype)
        assert len(got.data) > 1000
        got.close()
    # Swagger UI would otherwise send the spec's URL to its public online validator.
    assert '"validatorUrl": null' in html


def test_unknown_docs_asset_is_404(client):
    assert client.get("/docs/assets/nothing.js").status_code == 404
    assert client.get("/docs/assets/../../wsgi.py").status_code == 404
