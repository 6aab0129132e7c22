"""Who may do what in the console: a role's capabilities, the `require` guard of every page, and the apps an
operator limited to some apps may see (anything of another app is answered 404, as if it did not exist)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import abort, redirect, request, url_for
from flask_babel import gettext

from console.web import blp, signed_in
from service.pages.i18n import local_path

F = TypeVar("F", bound=Callable[..., Any])

READ = "read"  # every page that only shows something
REQUESTS = "requests.act"  # act on rights requests
IDENTITY = "identity.view"  # see a request's decrypted identity and contact
RETENTION = "retention.act"  # retention policies and runs
ADMIN = "admin"  # operators, apps and keys
INCIDENTS = "incidents.act"  # open incidents, move them on, record notifications, assess who was affected
GOVERNANCE = "governance.act"  # keep the processor register, draft and submit impact assessments
APPROVE = "governance.approve"  # approve an impact assessment or send it back (the approver is named)

CAPABILITIES: dict[str, frozenset[str]] = {
    "viewer": frozenset({READ}),
    "agent": frozenset({READ, REQUESTS, IDENTITY}),
    "retention": frozenset({READ, RETENTION}),
    # Breach response is the privacy office's: admins (a dedicated role can take it over by this one line).
    # Governance records are the privacy office's too; approving is a capability of its own so that a dedicated
    # drafting role can be added without the right to approve its own work.
    "admin": frozenset({READ, REQUESTS, IDENTITY, RETENTION, ADMIN, INCIDENTS, GOVERNANCE, APPROVE}),
}


def can(capability: str) -> bool:
    """Whether the signed-in operator's role has `capability` (templates use it to show only what works)."""
    who = signed_in()
    return who is not None and capability in CAPABILITIES.get(who.role, frozenset())


def require(capability: str) -> Callable[[F], F]:
    """Guard a console view: signed in (else to the sign-in page) and holding `capability` (else 403)."""

    def guard(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if signed_in() is None:
                back = local_path(request.full_path.rstrip("?") if request.method == "GET" else None, "/console/")
                return redirect(url_for("console.signin", next=back), code=303)
            if not can(capability):
                abort(403)
            return view(*args, **kwargs)

        guarded.console_capability = capability  # type: ignore[attr-defined] - read by the route matrix test
        return guarded  # type: ignore[return-value]

    return guard


def visible(app_id: int) -> bool:
    """Whether the signed-in operator may see objects of app `app_id`."""
    who = signed_in()
    return who is not None and who.sees_app(app_id)


def app_filter() -> tuple[int, ...] | None:
    """The apps the operator is limited to, or None for every app."""
    who = signed_in()
    return () if who is None else who.app_ids


@dataclass(frozen=True)
class NavItem:
    """An entry of the console's menu, shown to the roles with `capability`; later pages append theirs."""

    endpoint: str
    label: Callable[[], str]
    capability: str
    current: tuple[str, ...]  # the endpoints under this entry (marked as the current page)
    company_wide: bool = False  # records spanning every app: shown only to operators of every app


NAV: list[NavItem] = [
    NavItem("console.overview", lambda: gettext("Overview"), READ, ("console.overview",)),
    NavItem("console.requests", lambda: gettext("Requests"), READ,
            ("console.requests", "console.request_detail", "console.identity", "console.confirm", "console.act")),
    NavItem("console.holds_list", lambda: gettext("Legal holds"), READ,
            ("console.holds_list", "console.hold_release_confirm")),
    NavItem("console.stores_page", lambda: gettext("Stores"), READ, ("console.stores_page",)),
    NavItem("console.retention_page", lambda: gettext("Retention"), READ,
            ("console.retention_page", "console.policy_page", "console.run_page")),
    NavItem("console.consent_page", lambda: gettext("Consent"), READ, ("console.consent_page",)),
    NavItem("console.incidents_list", lambda: gettext("Incidents"), READ,
            ("console.incidents_list", "console.incident_page")),
    NavItem("console.governance_page", lambda: gettext("Governance"), READ,
            ("console.governance_page", "console.ropa_page", "console.assessments_page", "console.assessment_page",
             "console.processors_page", "console.evidence_page"), company_wide=True),
    NavItem("console.apps_page", lambda: gettext("Apps and keys"), ADMIN,
            ("console.apps_page", "console.key_revoke_confirm")),
]


def role_names() -> dict[str, str]:
    return {"viewer": gettext("viewer"), "agent": gettext("agent"), "retention": gettext("retention"),
            "admin": gettext("administrator")}


@blp.context_processor
def _chrome() -> dict[str, Any]:
    def nav() -> list[dict[str, Any]]:
        everything = app_filter() is None
        return [{"endpoint": i.endpoint, "label": i.label(), "current": i.current} for i in NAV
                if can(i.capability) and (everything or not i.company_wide)]

    def operator_apps() -> list[str]:
        from flask import current_app
        from sqlalchemy import select

        from service.tenancy import App

        limited = app_filter()
        if not limited:
            return []
        with current_app.extensions["db"].sessions() as s:
            return list(s.scalars(select(App.slug).where(App.id.in_(limited)).order_by(App.slug)))

    return {"console_nav": nav, "role_names": role_names, "can": can, "operator_apps": operator_apps}
