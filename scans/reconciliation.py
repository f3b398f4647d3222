"""Deciding a patient check: a study whose DICOM identity disagreed with its record (``scans.ingest.patients``).

A doctor or hospital admin sees both identities side by side and decides, once, with an audit event:
- **assign** the study to the right record (the record it was filed under, if the files were right after
  all, or another one of the hospital);
- **create** a new record from the identity in the files, and file the study under it;
- **reject** the study: it stays stored but is never reported nor shown to a patient.
Until then, patients never see the study and its report cannot be signed.
"""

from django.db import IntegrityError, transaction

from accounts.models import Patient
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from scans.ingest.patients import UNMATCHED_MRN
from scans.models import PatientCheck, Study


class PatientCheckError(UserFacingError):
    status_code = 400


def _decide(*, study, user, request, decision, patient=None):
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.patient_check != PatientCheck.NEEDED:
            raise PatientCheckError("This study's patient has already been decided.")
        before = locked.patient_id
        if patient is not None:
            locked.patient = patient
        locked.patient_check = PatientCheck.REJECTED if decision == "reject" else PatientCheck.CONFIRMED
        locked.save(update_fields=["patient", "patient_check", "updated_at"])
        record_event(
            action=AuditAction.PATIENT_CHECK, target=locked, actor=user, request=request,
            detail={"decision": decision, "patient_before": before, "patient_after": locked.patient_id,
                    "reason": locked.patient_check_reason},
        )
    return locked


def assign_study(*, study, patient, user, request=None):
    """File the study under ``patient`` (a record of the same hospital) and confirm it."""
    if patient.hospital_id != study.hospital_id or patient.mrn == UNMATCHED_MRN:
        raise PatientCheckError("Choose a patient record of this hospital.")
    return _decide(study=study, user=user, request=request, decision="assign", patient=patient)


def create_patient_for_study(*, study, user, request=None):
    """A new record from the identity in the files (its PatientID as MRN), and the study filed under it."""
    identity = study.identity_in_files or {}
    if not identity.get("patient_id"):
        raise PatientCheckError("The files carry no PatientID to make a record from; assign the study instead.")
    try:
        with transaction.atomic():
            patient = Patient.objects.create(
                hospital_id=study.hospital_id, mrn=identity["patient_id"],
                full_name=identity.get("name") or f"Unknown patient {identity['patient_id']}",
                birth_date=identity.get("birth_date") or None, sex=identity.get("sex", ""),
            )
    except IntegrityError:
        raise PatientCheckError(
            f"A record with MRN {identity['patient_id']} exists already: assign the study to the right record."
        ) from None
    return _decide(study=study, user=user, request=request, decision="create", patient=patient)


def reject_study(*, study, user, request=None):
    """Keep the study stored but out of every report and patient view."""
    return _decide(study=study, user=user, request=request, decision="reject")
