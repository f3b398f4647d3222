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
