"""The report to the authority (Art. 33(3)) in JSON and HTML, English and Simplified Chinese, and the CLI."""

from __future__ import annotations


def _assessed(client, headers, opened):
    made = opened(severity="high", jurisdictions=["GDPR", "PIPL"])
    r = client.patch(f"/v1/incidents/{made['id']}", headers=headers, json={
        "reason": "assessed", "state": "assessed", "risk": "high_risk", "risk_reasoning": "emails & <b>names</b>",
        "consequences": "phishing", "measures": "bucket locked; users told"})
    assert r.status_code == 200, r.json
    return made


def test_report_json_and_html_in_both_languages(client, headers, opened):
    made = _assessed(client, headers, opened)
    url = f"/v1/incidents/{made['id']}/report"
    data = client.get(url, headers=headers).json
    assert data["incident"]["risk"] == "high_risk" and data["incident"]["consequences"] == "phishing"
    assert data["controller"]["email"] and data["affected"] is None
    assert {o["jurisdiction"] for o in data["obligations"]} == {"GDPR", "PIPL"}
    html = client.get(f"{url}?format=html", headers=headers)
    assert html.status_code == 200 and html.mimetype == "text/html"
    text = html.get_data(as_text=True)
    assert "Likely consequences (Art. 33(3)(c))" in text and "phishing" in text
    assert "&lt;b&gt;names&lt;/b&gt;" in text and "<b>names" not in text  # escaped
    zh = client.get(f"{url}?format=html&lang=zh", headers=headers).get_data(as_text=True)
    assert 'lang="zh-Hans"' in zh and "个人数据泄露通知" in zh and "高风险" in zh
    assert client.get(f"{url}?format=pdf", headers=headers).status_code == 422


def test_cli_list_show_report_timeline(inc_app, client, headers, opened):
    made = _assessed(client, headers, opened)
    runner = inc_app.test_cli_runner()
    out = runner.invoke(args=["incidents", "list", "--app", "app-a"])
    assert out.exit_code == 0 and made["id"] in out.output
    out = runner.invoke(args=["incidents", "show", made["id"]])
    assert out.exit_code == 0 and "GDPR" in out.output and "authority" in out.output
    out = runner.invoke(args=["incidents", "report", made["id"], "--lang", "zh"])
    assert out.exit_code == 0 and '"risk": "high_risk"' in out.output
    out = runner.invoke(args=["incidents", "timeline", made["id"]])
    assert out.exit_code == 0 and "incident.opened" in out.output and "incident.updated" in out.output
    out = runner.invoke(args=["incidents", "record", made["id"]])
    assert out.exit_code != 0 and "not closed" in out.output
    out = runner.invoke(args=["incidents", "assess", made["id"]])
    assert out.exit_code == 0 and '"distinct_subjects": 0' in out.output, out.output
