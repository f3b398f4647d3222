"""``{% load report_tags %}{% report_panel study %}``: the report editor (or "no report yet") for a study page."""

from django import template

from portal.audit import record_event
from portal.models import AuditAction
from reports.models import Report
from reports.views import editor_context, visible_versions

register = template.Library()


@register.inclusion_tag("reports/_report_panel.html", takes_context=True)
def report_panel(context, study):
    request = context["request"]
    report = Report.objects.visible_to(request.user).filter(study=study).first()
    if report is None:
        return {"report": None, "request": request}
    versions = list(visible_versions(request, report))
    if versions:
        record_event(
            action=AuditAction.VIEW,
            target=versions[0],
            request=request,
            detail={"version": versions[0].number, "via": "study page"},
        )
    return {**editor_context(request, report, versions), "request": request, "csrf_token": context.get("csrf_token")}
