"""Single-use links: stored hashed, redeemed once, refused when used, expired or unknown, subject encrypted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from service import weblinks
from service.db import utcnow
from service.tenancy import create_app_tenant


@pytest.fixture
def app_id(app) -> int:
    with app.extensions["db"].session() as session:
        return create_app_tenant(session, "links-app").id


def test_a_link_opens_once_and_keeps_neither_token_nor_subject_in_clear(app, app_id):
    db, keys = app.extensions["db"], app.extensions["keys"]
    with db.session() as session:
        token, expires = weblinks.mint(session, keys, kind=weblinks.SUBJECT, app_id=app_id, subject_id="user-42",
                                       locale="zh_Hans", return_url="https://app.example/settings")
    assert len(token) >= 43 and expires > utcnow() + timedelta(minutes=9)
    with db.session() as session:
        row = session.scalars(select(weblinks.WebLink)).one()
        assert token not in row.token_hash and b"user-42" not in row.subject
    with db.session() as session:
        opened = weblinks.redeem(session, keys, token)
    assert (opened.kind, opened.app_id, opened.subject_id, opened.locale) == ("subject", app_id, "user-42", "zh_Hans")
    with db.session() as session, pytest.raises(weblinks.LinkRefused) as refused:
        weblinks.redeem(session, keys, token)
    assert refused.value.reason == "used"


def test_expired_and_unknown_links_are_refused_by_name(app, app_id):
    db, keys = app.extensions["db"], app.extensions["keys"]
    with db.session() as session:
        token, _ = weblinks.mint(session, keys, kind=weblinks.REQUEST, app_id=app_id, request_id="r-1",
                                 now=utcnow() - timedelta(minutes=11))
    for candidate, reason in ((token, "expired"), (token[:-1] + "A", "unknown"), ("", "unknown"), ("x" * 500,
                                                                                                 "unknown")):
        with db.session() as session, pytest.raises(weblinks.LinkRefused) as refused:
            weblinks.redeem(session, keys, candidate)
        assert refused.value.reason == reason, candidate
    with db.session() as session:
        assert weblinks.purge(session, now=utcnow() + timedelta(days=2)) == 1


def test_a_link_names_exactly_one_target(app, app_id):
    with app.extensions["db"].session() as session, pytest.raises(ValueError):
        weblinks.mint(session, app.extensions["keys"], kind=weblinks.SUBJECT, app_id=app_id, request_id="r-1")
