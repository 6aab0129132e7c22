"""The report to the supervisory authority (GDPR Art. 33(3); UK GDPR the same; the content the other laws ask is a
subset) from the incident's facts and its latest assessment, in English or Simplified Chinese, as JSON or HTML.

The labels are this report's own (it is a document handed to an authority, not a page of the service), so they
live here rather than in the pages' Babel catalogues.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session

from incidents import assessment, clocks
from incidents.models import Incident

# Per language: the report's labels and the words for each risk level (labels.json beside the template).
_TEXT = json.loads((files("incidents") / "templates" / "labels.json").read_text(encoding="utf-8"))
LABELS: dict[str, dict[str, str]] = _TEXT["labels"]
RISK_WORDS: dict[str, dict[str, str]] = _TEXT["risk"]
_ENV = Environment(loader=PackageLoader("incidents", "templates"), autoescape=select_autoescape(["html"]))


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def content(session: Session, rt: Any, incident: Incident, table: clocks.Table, lang: str = "en") -> dict[str, Any]:
    """The report's content: the incident's facts, the latest assessment's counts, the clocks."""
    controller = rt.settings.controller
    run = assessment.latest(session, incident.id)
    counted = None if run is None else assessment.counts(session, run)
    notices = clocks.notices_of(session, [incident.id])[incident.id]
    return {
        "lang": lang, "labels": LABELS[lang],
        "incident": {"id": incident.id, "version": incident.version, "title": incident.title,
                     "description": incident.description, "state": incident.state, "severity": incident.severity,
                     "discovered_at": _iso(incident.discovered_at), "occurred_from": _iso(incident.occurred_from),
                     "occurred_until": _iso(incident.occurred_until), "risk": incident.risk,
                     "risk_words": RISK_WORDS[lang].get(incident.risk or "", None),
                     "risk_reasoning": incident.risk_reasoning, "consequences": incident.consequences,
                     "measures": incident.measures, "root_cause": incident.root_cause,
                     "jurisdictions": incident.jurisdictions},
        "controller": {"name": controller.name, "contact": controller.contact, "email": controller.email,
                       "phone": controller.phone},
        "affected": None if counted is None else {
            "approximate_subjects": counted["distinct_subjects"], "with_contact": counted["with_contact"],
            "categories": counted["categories"], "not_determinable": counted["not_determinable"],
            "per_store": [{"store": s["store"], "category": s["category"], "subjects": s["subjects"]}
                          for s in counted["stores"]],
            "as_of": counted["finished_at"], "run": counted["run"]},
        "obligations": [{k: _iso(v) for k, v in o.items()}
                        for o in clocks.obligations(incident, notices, table)],
    }


def html(report: dict[str, Any]) -> str:
    return _ENV.get_template("report.html").render(r=report, L=report["labels"])
