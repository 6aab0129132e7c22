"""The console's pages on the shared web layer: security headers, no inline style or script, labelled controls,
the sign-in limited per address, the console's own stylesheet served."""

from __future__ import annotations

import re

from tests.console.conftest import create_operator, set_up, sign_in


def test_console_pages_carry_the_security_headers_and_no_inline_style_or_script(app, make_operator):
    op = make_operator("agent")
    for path in ("/console/", "/console/requests", "/console/account", "/console/signin"):
        answer = (op.browser if path != "/console/signin" else app.test_client()).get(path)
        assert answer.status_code == 200, path
        assert "script-src" not in answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Frame-Options"] == "DENY"
        assert "<script" not in answer.text and " style=" not in answer.text and "<style" not in answer.text
        ids = set(re.findall(r'<label for="([^"]+)"', answer.text))
        for control in re.findall(r'<(?:input|select|textarea)\b[^>]*>', answer.text):
            if 'type="hidden"' in control or " hidden" in control or 'type="submit"' in control:
                continue
            found = re.search(r'id="([^"]+)"', control)
            assert found and found.group(1) in ids, f"{path}: unlabelled {control}"
    css = app.test_client().get("/console/static/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_sign_in_attempts_are_limited_per_address(app):
    set_up(app, create_operator(app, "ann@example.com", "agent"))
    answers = [sign_in(app, f"n{n}@example.com", "wrong password!").status_code for n in range(21)]
    assert answers[:20] == [401] * 20 and answers[20] == 429


def test_sign_in_attempts_are_limited_per_email(app):
    answers = [sign_in(app, "ann@example.com", "wrong password!").status_code for n in range(11)]
    assert answers[:10] == [401] * 10 and answers[10] == 429


def test_the_console_speaks_chinese_when_asked(app, make_operator):
    op = make_operator("viewer")
    page = op.browser.get("/console/requests", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200 and 'lang="zh-Hans"' in page.text
    assert "<h1>请求</h1>" in page.text and "下载为 CSV" in page.text


def test_the_programme_pages_carry_no_inline_style_and_label_every_control(app, make_operator, make_key, client):
    headers = make_key("shop", "admin,dsar:manage,platform:retention")
    assert client.post("/v1/holds", headers=headers, json={"category": "photos", "reason": "audit"}).status_code == 201
    assert client.post("/v1/retention/policies", headers=headers, json={
        "store": "uploads", "category": "avatars", "retain_for": "P30D", "basis": "test"}).status_code == 201
    run = client.post("/v1/retention/runs", headers=headers, json={"policy": "uploads.avatars", "dry_run": True})
    op = make_operator("admin")
    for path in ("/console/", "/console/holds", "/console/stores", "/console/retention",
                 "/console/retention/policies/uploads.avatars", f"/console/retention/runs/{run.json['id']}",
                 "/console/consent", "/console/apps"):
        for language in ("en", "zh-CN"):
            answer = op.browser.get(path, headers={"Accept-Language": language})
            assert answer.status_code == 200, path
            assert "<script" not in answer.text and " style=" not in answer.text and "<style" not in answer.text
            ids = set(re.findall(r'<label for="([^"]+)"', answer.text))
            for control in re.findall(r'<(?:input|select|textarea)\b[^>]*>', answer.text):
                if 'type="hidden"' in control or 'type="submit"' in control:
                    continue
                found = re.search(r'id="([^"]+)"', control)
                assert found and found.group(1) in ids, f"{path}: unlabelled {control}"
    chinese = op.browser.get("/console/retention", headers={"Accept-Language": "zh-CN"}).text
    assert "<h1>保留</h1>" in chinese and "新建政策" in chinese
