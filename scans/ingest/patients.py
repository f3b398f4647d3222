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
"""

from accounts.models import Patient
from scans.ingest.parsing import FailureReason, RejectedFile


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
    """The hospital's patient with the file's PatientID as MRN, created from the file if there is none."""
    patient, _ = Patient.objects.get_or_create(
        hospital_id=batch.hospital_id,
        mrn=header.patient_id,
        defaults={
            "full_name": header.patient_name or f"Unknown patient {header.patient_id}",
            "birth_date": header.patient_birth_date,
            "sex": header.patient_sex,
        },
    )
    return patient
