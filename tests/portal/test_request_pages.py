"""Rights requests in the privacy centre: made on the open web and confirmed by the emailed code, or vouched for
by the app when signed in; followed on their pages; locked, limited and kept to the session that made them."""

from __future__ import annotations

import io
import re
import zipfile
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import select

from dsar.fields import details_of
from dsar.models import DsarRequest
from service.audit import AuditEvent
from service.pages import limits
from tests.portal.conftest import code_for, csrf_token

REQUEST = "/privacy/shop/request"
VERIFY = "/privacy/shop/verify"


def submit(browser: Any, slug: str = "shop", **fields: str) -> Any:
    """Fill in the request form as a person would (the form's own CSRF token) and send it."""
    form = browser.get(f"/privacy/{slug}/request")
    assert form.status_code == 200, form.text
    data = {"csrf_token": csrf_token(form.text), "type": "access", "jurisdiction": "GDPR",
            "email": "ana@example.com", **fields}
    return browser.post(f"/privacy/{slug}/request", data=data)


def pending_id(browser: Any) -> str:
    page = browser.get(VERIFY)
    assert page.status_code == 200, page.text
    return re.search(r'name="request" value="([^"]+)"', page.text).group(1)


def enter(browser: Any, request_id: str, code: str) -> Any:
    page = browser.get(f"{VERIFY}?request={request_id}")
    return browser.post(VERIFY, data={"csrf_token": csrf_token(page.text), "request": request_id, "code": code})


def stored(app: Any, request_id: str) -> DsarRequest:
    with app.extensions["db"].sessions() as session:
        row = session.get(DsarRequest, request_id)
        session.expunge(row)
        return row


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_an_open_web_request_is_confirmed_by_the_code_in_its_email(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    form = browser.get(REQUEST)
    assert "Get a copy of my data" in form.text and 'value="GDPR" selected' in form.text  # "EU" means GDPR
    sent = submit(browser, type="access", jurisdiction="GDPR", email="Ana@Example.com")
    assert sent.status_code == 303 and sent.headers["Location"] == VERIFY
    request_id = pending_id(browser)
    assert stored(app, request_id).status == "pending_verification"
    confirmed = enter(browser, request_id, code_for(app, request_id))
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"] == f"/privacy/shop/requests/{request_id}"
    detail = browser.get(confirmed.headers["Location"])
    assert detail.status_code == 200 and "is confirmed" in detail.text and request_id in detail.text
    assert "Completed" in detail.text  # the development estate's stores answered in-process
    browser.set_cookie("lang", "zh_Hans")
    chinese = browser.get(confirmed.headers["Location"])
    assert '<html lang="zh-Hans">' in chinese.text and "年" in chinese.text  # dates in the person's language
    assert stored(app, request_id).verified_by == "requester"
    listed = browser.get("/privacy/shop/requests")
    assert listed.status_code == 200 and f"/privacy/shop/requests/{request_id}" in listed.text
    # Confirmed already: the code page sends the person on to the request.
    assert browser.get(f"{VERIFY}?request={request_id}").headers["Location"].endswith(request_id)
    with app.extensions["db"].sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.resource_id == request_id)).all()
    assert {"dsar.received", "dsar.verified"} <= {e.action for e in events}
    assert all("ana" not in f"{e.actor}{e.details}".lower() for e in events)


def test_five_wrong_codes_lock_the_request(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    submit(browser)
    request_id = pending_id(browser)
    code = code_for(app, request_id)
    for left in (4, 3, 2, 1):
        answer = enter(browser, request_id, wrong(code))
        assert answer.status_code == 422
        assert f"You can try {left} more time" in answer.text
        field = re.search(r"<input[^>]*id=\"code\"[^>]*>", answer.text).group(0)
        assert 'aria-invalid="true"' in field and 'aria-describedby="code-hint code-error"' in field
        assert 'id="code-error"' in answer.text
    locked = enter(browser, request_id, wrong(code))
    assert locked.status_code == 423 and "This request is locked" in locked.text
    assert stored(app, request_id).status == "locked"
    # Locked for good: even the right code now gets the locked page, and so does the code page itself.
    assert enter(browser, request_id, code).status_code == 423
    assert browser.get(VERIFY).status_code == 423
    assert "Locked" in browser.get(f"/privacy/shop/requests/{request_id}").text


def test_a_code_that_is_not_six_digits_is_refused_without_counting(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    submit(browser)
    request_id = pending_id(browser)
    answer = enter(browser, request_id, "12ab")
    assert answer.status_code == 422 and "Enter the 6-digit code" in answer.text
    assert stored(app, request_id).code_attempts == 0
    spaced = code_for(app, request_id)
    assert enter(browser, request_id, f"{spaced[:3]} {spaced[3:]}").status_code == 303  # as the email groups it


def test_a_new_code_replaces_the_old_one_and_resends_are_limited(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    submit(browser)
    request_id = pending_id(browser)
    first = code_for(app, request_id)

    def resend() -> Any:
        page = browser.get(VERIFY)
        return browser.post("/privacy/shop/verify/resend",
                            data={"csrf_token": csrf_token(page.text), "request": request_id})

    again = resend()
    assert again.status_code == 303 and again.headers["Location"] == f"{VERIFY}?request={request_id}"
    assert "We sent a new code" in browser.get(again.headers["Location"]).text
    second = code_for(app, request_id)
    if second != first:  # one time in a million the new code is the old one
        assert enter(browser, request_id, first).status_code == 422
    assert resend().status_code == 303 and resend().status_code == 303  # three resends an hour
    limited = resend()
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "as many new codes as we can" in limited.text and 'name="code"' in limited.text
    assert enter(browser, request_id, code_for(app, request_id)).status_code == 303


def test_an_identity_that_matches_nothing_gets_the_same_answer(estate_app):
    from tests.dsar.conftest import person

    known, unknown = person(1).user["email"], "nobody.at.all@example.com"
    answers = []
    for email in (known, unknown):
        browser = estate_app.test_client()
        sent = submit(browser, email=email)
        request_id = pending_id(browser)
        page = browser.get(VERIFY).text
        answers.append((sent.status_code, sent.headers["Location"], sent.text,
                        page.replace(request_id, "ID").replace(csrf_token(page), "TOKEN")))
        assert stored(estate_app, request_id).status == "pending_verification"
        assert code_for(estate_app, request_id)  # a code goes out either way
    assert answers[0] == answers[1]


def test_a_signed_in_request_is_verified_at_once(app, portal_app, sign_in):
    browser = sign_in(portal_app["writer"], "user-1")
    form = browser.get(REQUEST)
    assert "no code is needed" in form.text and 'name="phone"' not in form.text
    sent = browser.post(REQUEST, data={"csrf_token": csrf_token(form.text), "type": "erasure",
                                       "jurisdiction": "UK_GDPR"})
    assert sent.status_code == 303
    request_id = sent.headers["Location"].rsplit("/", 1)[1]
    row = stored(app, request_id)
    assert row.verified_at is not None and row.verified_by.startswith("subject:")
    assert "user-1" not in row.verified_by and row.jurisdiction == "UK_GDPR"
    detail = browser.get(sent.headers["Location"])
    assert detail.status_code == 200 and "Delete my data" in detail.text and "Waiting for your code" not in detail.text
    # Found by the subject's identity, not only by this session: a new sign-in lists it too.
    later = sign_in(portal_app["writer"], "user-1")
    assert f"/privacy/shop/requests/{request_id}" in later.get("/privacy/shop/requests").text
    assert later.get(f"/privacy/shop/requests/{request_id}").status_code == 200


def test_a_rectification_asks_what_is_wrong_and_what_it_should_say(app, portal_app, sign_in):
    browser = sign_in(portal_app["writer"], "user-1")
    form = browser.get(REQUEST)
    missing = browser.post(REQUEST, data={"csrf_token": csrf_token(form.text), "type": "rectification",
                                          "jurisdiction": "GDPR", "item": "Postal address"})
    assert missing.status_code == 422 and "Say what it should be instead" in missing.text
    field = re.search(r"<textarea[^>]*id=\"value\"[^>]*>", missing.text).group(0)
    assert 'aria-invalid="true"' in field and "value-error" in field and 'href="#value"' in missing.text
    assert 'value="Postal address"' in missing.text  # what was typed stays
    sent = browser.post(REQUEST, data={"csrf_token": csrf_token(form.text), "type": "rectification",
                                       "jurisdiction": "GDPR", "item": "Postal address", "value": "1 New Street"})
    assert sent.status_code == 303
    request_id = sent.headers["Location"].rsplit("/", 1)[1]
    with app.extensions["db"].sessions() as session:
        row = session.get(DsarRequest, request_id)
        details = details_of(app.extensions["runtime"], row)
    assert details == {"corrections": {"unsure": {"Postal address": "1 New Street"}}}


def test_bad_form_input_names_the_field(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    cases = {"email": {"email": "not-an-address"}, "jurisdiction": {"jurisdiction": "ATLANTIS"},
             "type": {"type": "everything"}}
    for field, extra in cases.items():
        answer = submit(browser, **extra)
        assert answer.status_code == 422, (field, answer.text)
        assert f'id="{field}-error"' in answer.text, field
    assert submit(browser, email="").status_code == 422
    assert submit(browser, email="a\x00b@example.com").status_code == 422
    with app.extensions["db"].sessions() as session:
        assert session.scalar(select(DsarRequest.id)) is None


def test_another_session_s_or_app_s_request_is_not_found(app, make_key, portal_app, sign_in):
    make_key("other", "admin")
    ana = app.test_client()
    submit(ana)
    theirs = pending_id(ana)
    enter(ana, theirs, code_for(app, theirs))
    assert ana.get(f"/privacy/shop/requests/{theirs}").status_code == 200
    unknown = ana.get("/privacy/shop/requests/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404
    bob = app.test_client()
    submit(bob, email="bob@example.com")
    for path in (f"/privacy/shop/requests/{theirs}", f"{VERIFY}?request={theirs}",
                 f"/privacy/other/requests/{theirs}"):
        answer = bob.get(path)
        assert answer.status_code == 404 and "Not found" in answer.text, path
    assert "Not found" in bob.get(f"/privacy/shop/requests/{theirs}").text
    assert ana.get(f"/privacy/other/requests/{theirs}").status_code == 404  # the session is shop's only
    token = csrf_token(bob.get(VERIFY).text)
    assert bob.post(VERIFY, data={"csrf_token": token, "request": theirs, "code": "123456"}).status_code == 404
    assert bob.post(f"/privacy/shop/requests/{theirs}/download", data={"csrf_token": token}).status_code == 404
    assert stored(app, theirs).code_attempts == 0
    # A signed-in subject sees their own requests only.
    carol = sign_in(portal_app["writer"], "carol")
    assert carol.get(f"/privacy/shop/requests/{theirs}").status_code == 404
    assert theirs not in carol.get("/privacy/shop/requests").text
    assert app.test_client().get("/privacy/shop/requests").status_code == 303  # no session: the front page


def test_a_form_without_its_csrf_token_is_refused(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    browser.get(REQUEST)
    refused = browser.post(REQUEST, data={"type": "access", "jurisdiction": "GDPR", "email": "ana@example.com"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "The form could not be accepted" in refused.text
    submit(browser)
    request_id = pending_id(browser)
    assert browser.post(VERIFY, data={"request": request_id, "code": "123456"}).status_code == 400
    assert stored(app, request_id).code_attempts == 0
    with app.extensions["db"].sessions() as session:
        assert len(session.scalars(select(DsarRequest.id)).all()) == 1


def test_submission_is_rate_limited_per_identity_and_per_ip(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    answers = [submit(browser, email="Ana@example.com" if i % 2 else " ana@example.com").status_code
               for i in range(6)]
    assert answers == [303] * 5 + [429]
    limited = submit(browser, email="ana@example.com")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.mimetype == "text/html" and "Too many attempts" in limited.text
    limits.reset(app)
    others = [submit(browser, email=f"person{i}@example.com").status_code for i in range(31)]
    assert others == [303] * 30 + [429]  # 30 an hour from one address, whoever they are for


def test_code_entry_is_rate_limited_per_request_and_per_ip(app, make_key):
    make_key("shop", "admin")
    browser = app.test_client()
    submit(browser)
    first = pending_id(browser)
    answers = [enter(browser, first, "abc").status_code for _ in range(11)]
    assert answers == [422] * 10 + [429]
    limited = enter(browser, first, code_for(app, first))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert stored(app, first).status == "pending_verification"
    limits.reset(app)
    for i in range(6):  # other requests from the same address: each has its own 10, the address 60 in all
        submit(browser, email=f"p{i}@example.com")
        other = pending_id(browser)
        assert [enter(browser, other, "abc").status_code for _ in range(10)] == [422] * 10
    submit(browser, email="last@example.com")
    assert enter(browser, pending_id(browser), "abc").status_code == 429


def test_the_limits_count_in_redis_when_it_is_configured(rq_app, make_key, redis_url):
    from redis import Redis

    make_key("shop", "admin")
    browser = rq_app.test_client()
    answers = [submit(browser, email="ana@example.com").status_code for _ in range(6)]
    assert answers == [303] * 5 + [429]
    assert int(submit(browser, email="ana@example.com").headers["Retry-After"]) > 0
    conn = Redis.from_url(redis_url)
    counted = [k.decode() for k in conn.keys("*privacy-pages*")]
    conn.close()
    assert any("portal-submit-identity" in k for k in counted), counted  # every web process shares them
    assert not any("ana" in k for k in counted)  # the identity is hashed


def test_a_completed_access_request_s_export_downloads_from_its_page(estate_app):
    from tests.dsar.conftest import person

    ana = person(2).user
    browser = estate_app.test_client()
    submit(browser, email=ana["email"])
    request_id = pending_id(browser)
    assert enter(browser, request_id, code_for(estate_app, request_id)).status_code == 303
    detail = browser.get(f"/privacy/shop/requests/{request_id}")  # the jobs ran in-process
    assert "Completed" in detail.text and "Download my data" in detail.text
    assert "cloud-photos" not in detail.text and "Our system 1 of 2" in detail.text  # no store names by default
    got = browser.post(f"/privacy/shop/requests/{request_id}/download",
                       data={"csrf_token": csrf_token(detail.text)})
    assert got.status_code == 200 and got.mimetype == "application/zip"
    assert got.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(got.data))
    assert ana["email"] in "".join(archive.read(n).decode(errors="replace") for n in archive.namelist())
    with estate_app.extensions["db"].sessions() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).where(
            AuditEvent.resource_id == request_id).order_by(AuditEvent.id))]
    assert actions[-2:] == ["dsar.download_token_issued", "dsar.export_downloaded"]
    stranger = estate_app.test_client()
    submit(stranger, email="x@example.com")
    assert stranger.post(f"/privacy/shop/requests/{request_id}/download",
                         data={"csrf_token": csrf_token(stranger.get(VERIFY).text)}).status_code == 404


class _Controls(HTMLParser):
    """The page's form controls and labels, and whether it has inline style or script."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.inline = False
        self.headings: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"] or "")
        if tag in ("script", "style") or "style" in a or any(k.startswith("on") for k in a):
            self.inline = True
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))


def test_the_pages_label_every_control_and_keep_their_headings_in_order(app, make_key, portal_app):
    browser = app.test_client()
    sent = submit(browser, type="rectification")  # the page again, with its errors
    submit(browser)
    request_id = pending_id(browser)
    wrong_code = enter(browser, request_id, "000000" if code_for(app, request_id) != "000000" else "111111")
    pages = {"form": browser.get(REQUEST).text, "errors": sent.text, "verify": browser.get(VERIFY).text,
             "wrong code": wrong_code.text, "detail": browser.get(f"/privacy/shop/requests/{request_id}").text,
             "list": browser.get("/privacy/shop/requests").text}
    for name, html in pages.items():
        parsed = _Controls()
        parsed.feed(html)
        unlabelled = [c for c in parsed.controls if c.get("id") not in parsed.labels]
        assert not unlabelled, (name, unlabelled)
        assert not parsed.inline, name
        assert parsed.headings[0] == 1 and all(b - a <= 1 for a, b in zip(parsed.headings, parsed.headings[1:],
                                                                            strict=False)), name


def test_an_app_may_ask_for_more_identifiers_and_name_its_stores(base_config, tmp_path):
    """Extra identifiers are asked for, but only the email the code proves is searched: a phone number typed beside
    it could be anyone's, so it reaches the privacy team as a claim to check by hand."""
    from dsar.fields import details_of, subject_of
    from service.tenancy import create_app_tenant
    from tests.dsar.conftest import _app, write_config

    extra = '[portal.apps.shop]\nidentifiers = ["phone", "user_id"]\nshow_store_names = true\n'
    apps = _app({**base_config, "REDIS_URL": "",
                 "PRIVACY_CONFIG": write_config(tmp_path, extra, estate="estate.toml")})
    app = next(apps)
    try:
        with app.extensions["db"].session() as session:
            create_app_tenant(session, "shop")
        browser = app.test_client()
        form = browser.get(REQUEST).text
        assert 'id="phone"' in form and 'id="user_id"' in form
        assert submit(browser, phone="12", type="erasure").status_code == 422
        submit(browser, phone="+31 6 1234 5678", user_id="", type="erasure")
        request_id = pending_id(browser)
        with app.extensions["db"].sessions() as session:
            req = session.get(DsarRequest, request_id)
            identity = subject_of(app.extensions["runtime"], req)
            details = details_of(app.extensions["runtime"], req)
        assert identity == {"email": "ana@example.com"}
        assert details == {"claimed_identifiers": {"phone": "+31 6 1234 5678"}}
        enter(browser, request_id, code_for(app, request_id))
        assert "cloud-photos" in browser.get(f"/privacy/shop/requests/{request_id}").text
    finally:
        next(apps, None)
