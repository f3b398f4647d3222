"""Which patient record a file is filed under.

- a patient who uploads: everything lands on their own record, whatever PatientID the files carry
  (a CD from another hospital carries that hospital's ID);
- a doctor who chose a patient: a DICOM file whose PatientID is not that patient's MRN is rejected,
  so that a mixed folder is never filed under the wrong patient (files without a PatientID are
  accepted for the chosen patient);
- a doctor who chose "match from DICOM PatientID": the patient is found by MRN = PatientID within
  the hospital, or created with the file's PatientName, PatientBirthDate and PatientSex.
- A study already filed under another patient of the hospital rejects the file instead of mixing
  (``writer``).

Patient safety: a PatientID that matches a record is not enough. When the name, birth date or sex in
the files disagree with the record they would be filed under (:func:`identity_differences`), the new
study is filed there but marked "needs patient check" (``Study.patient_check``) with both identities
kept: patients never see it and its report cannot be signed until a doctor or hospital admin decides
(``scans.ingest.reconciliation``). A PatientID that matches no record creates one from the file only
where the hospital allows it (``Hospital.creates_patients_from_dicom``); otherwise the study waits in
the same queue, filed under the hospital's holding record for unmatched studies.
"""

import re
import unicodedata

from accounts.models import Patient
from scans.ingest.parsing import FailureReason, RejectedFile
from scans.models import PatientCheck

#: MRN of the holding record that studies of unknown patients wait under (never linked to a login).
UNMATCHED_MRN = "RADASSIST-UNMATCHED"
UNMATCHED_NAME = "Unmatched studies (awaiting patient check)"
_NAME_SEPARATORS = re.compile(r"[\s^=,.'\-]+")


def check_patient_id(batch, header):
    """A doctor's chosen patient must match the file's PatientID (a patient's own upload need not)."""
    if batch.patient_id is None:
        if not header.patient_id:
            raise RejectedFile(
                "The file has no PatientID to match a patient by; choose the patient before uploading.",
                failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            )
        return
    if batch.uploaded_by.is_patient or not header.patient_id:
        return
    if header.patient_id != batch.patient.mrn:
        raise RejectedFile(
            f"This file belongs to PatientID {header.patient_id}, not to the chosen patient "
            f"(MRN {batch.patient.mrn}); choose the right patient or match from the DICOM PatientID.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )


def patient_for(batch, header):
    """``(patient, created)``: the hospital's patient with the file's PatientID as MRN; without one, a record
    made from the file where the hospital allows it, else the holding record for unmatched studies."""
    patient = Patient.objects.filter(hospital_id=batch.hospital_id, mrn=header.patient_id).first()
    if patient is not None:
        return patient, False
    if not batch.hospital.creates_patients_from_dicom:
        holding, _ = Patient.objects.get_or_create(
            hospital_id=batch.hospital_id, mrn=UNMATCHED_MRN, defaults={"full_name": UNMATCHED_NAME}
        )
        return holding, False
    return Patient.objects.get_or_create(
        hospital_id=batch.hospital_id,
        mrn=header.patient_id,
        defaults={
            "full_name": header.patient_name or f"Unknown patient {header.patient_id}",
            "birth_date": header.patient_birth_date,
            "sex": header.patient_sex,
        },
    )


def name_tokens(name):
    """The words of a name, compared without case, accents, punctuation or DICOM's ``^`` and ``=``."""
    decomposed = unicodedata.normalize("NFKD", str(name or ""))
    plain = "".join(character for character in decomposed if not unicodedata.combining(character)).casefold()
    return frozenset(token for token in _NAME_SEPARATORS.split(plain) if token)


def identity_differences(*, patient, name, birth_date, sex):
    """What the files say that contradicts the record, one sentence each; a field missing on either side
    contradicts nothing. Names agree when the words of one contain the other's (a middle name may be
    left out), so twins with the same surname and birth date still differ by their given names."""
    differences = []
    in_files, on_record = name_tokens(name), name_tokens(patient.full_name)
    if in_files and on_record and not (in_files <= on_record or on_record <= in_files):
        differences.append(f"name {name!r} in the files, {patient.full_name!r} on the record")
    if birth_date and patient.birth_date and birth_date != patient.birth_date:
        differences.append(
            f"birth date {birth_date:%Y-%m-%d} in the files, {patient.birth_date:%Y-%m-%d} on the record"
        )
    if sex and patient.sex and sex != patient.sex:
        differences.append(f"sex {sex} in the files, {patient.sex} on the record")
    return differences


def patient_check_for(*, patient, patient_created, header):
    """``(PatientCheck, reason)`` for a new study of ``header`` filed under ``patient``."""
    if patient.mrn == UNMATCHED_MRN:
        return PatientCheck.NEEDED, (
            f"PatientID {header.patient_id} matches no patient record, and this hospital does not create "
            "records from DICOM: choose the patient."
        )
    if patient_created:
        return PatientCheck.CONFIRMED, ""
    differences = identity_differences(
        patient=patient, name=header.patient_name, birth_date=header.patient_birth_date, sex=header.patient_sex
    )
    if differences:
        return PatientCheck.NEEDED, f"The files disagree with MRN {patient.mrn}: " + "; ".join(differences) + "."
    return PatientCheck.CONFIRMED, ""


def identity_of(header):
    """The patient identity the files carry, as kept on the study for the person who checks it."""
    return {
        "patient_id": header.patient_id,
        "name": header.patient_name,
        "birth_date": header.patient_birth_date.isoformat() if header.patient_birth_date else "",
        "sex": header.patient_sex,
    }
