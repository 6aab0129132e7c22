"""`flask portal demo` and `flask portal link`: what `make run` prints opens the privacy centre, once."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import func, select

from consent.models import Policy


def test_the_demo_command_gives_the_demo_app_a_policy_and_a_link_that_opens(app, make_key):
    make_key("demo", "admin")
    runner = app.test_cli_runner()
    for _ in range(2):  # run twice (make run, again): one policy, a new link each time
        result = runner.invoke(args=["portal", "demo"])
        assert result.exit_code == 0, result.output
    urls = re.findall(r"http://\S+/privacy/demo/link/\S+", result.output)
    assert len(urls) == 1
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Policy)) == 1
    browser = app.test_client()
    assert browser.get(urlsplit(urls[0]).path).status_code == 303
    page = browser.get("/privacy/demo/consents")
    assert page.status_code == 200 and "Demo product privacy policy" in page.text


def test_the_link_command_names_an_unknown_app(app):
    result = app.test_cli_runner().invoke(args=["portal", "link", "nobody", "user-1"])
    assert result.exit_code != 0 and "no app 'nobody'" in result.output
