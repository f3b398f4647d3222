from django import forms

from accounts.models import Patient

MATCH_FROM_DICOM_LABEL = "Match or create from each file's DICOM PatientID"


class UploadStartForm(forms.Form):
    """Who the scans of an upload belong to. Choices come through ``visible_to``, so a foreign id is invalid."""

    patient = forms.ModelChoiceField(
        queryset=Patient.objects.none(),
        required=False,
        empty_label=MATCH_FROM_DICOM_LABEL,
        help_text="With a chosen patient, DICOM files of another PatientID are rejected. "
        "PNG and JPEG images always need a chosen patient.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["patient"]
        field.queryset = Patient.objects.visible_to(user)
        if user.is_patient:
            field.required = True
            field.empty_label = None
            field.label = "Your record"
            field.help_text = "Scans you upload are added to your own record."
            field.initial = field.queryset.first()


class PatientCheckForm(forms.Form):
    """A person's decision on a study whose DICOM identity disagreed with its record. No choice is preselected."""

    DECISIONS = (
        ("assign", "File it under this record (the one chosen below)"),
        ("create", "Create a new record from the identity in the files"),
        ("reject", "Reject the study: it does not belong to any patient here"),
    )
    decision = forms.ChoiceField(choices=DECISIONS, widget=forms.RadioSelect)
    patient = forms.ModelChoiceField(queryset=Patient.objects.none(), required=False,
                                     help_text="Only for filing under a record.")

    def __init__(self, *args, user, study, **kwargs):
        super().__init__(*args, **kwargs)
        from scans.ingest.patients import UNMATCHED_MRN

        self.fields["patient"].queryset = Patient.objects.visible_to(user).exclude(mrn=UNMATCHED_MRN)
        if study.patient.mrn != UNMATCHED_MRN:
            self.fields["patient"].initial = study.patient

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == "assign" and cleaned.get("patient") is None:
            self.add_error("patient", "Choose the record to file the study under.")
        return cleaned
