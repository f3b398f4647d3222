"""Who reads a study: a doctor of the hospital takes it ("assign to me") or is given it by a colleague."""

from accounts.permissions import user_may
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction


class AssignmentError(UserFacingError):
    status_code = 400


def assign_study(*, study, doctor, assigned_by, request=None):
    """Assign ``study`` to ``doctor`` (None: nobody). Only a doctor of the study's hospital can be assigned."""
    if doctor is not None and (doctor.hospital_id != study.hospital_id or not user_may(doctor, "sign")):
        raise AssignmentError("A study can only be assigned to a doctor of its hospital.")
    before = study.assigned_to_id
    study.assigned_to = doctor
    study.save(update_fields=["assigned_to", "updated_at"])
    record_event(action=AuditAction.ASSIGN, target=study, actor=assigned_by, request=request,
                 detail={"assigned_before": before, "assigned_to": doctor.pk if doctor else None})
    return study
