"""Forms of the report editor. Each form only collects input; the services decide and raise ReportError."""

from django import forms

from reports.models import FINDING_CHOICES, REPORT_SECTIONS
from reports.services import AGREES_WITH_AI, CorrectionInput

#: "Your conclusion" starts on the empty choice: an untouched draft says nothing about the AI finding.
CONCLUSION_CHOICES = [
    ("", "Choose your conclusion"),
    (AGREES_WITH_AI, "Agree with the AI finding"),
    ("A different finding (give the reason)", FINDING_CHOICES),
]

SECTION_WIDGET_ROWS = {
    "clinical_indication": 2,
    "technique": 3,
    "comparison": 2,
    "findings": 6,
    "impression": 5,
    "recommendation": 3,
}


class DraftForm(forms.Form):
    """The whole editor: report sections, conclusion and the doctor's measurement corrections.

    ``revision`` is the draft's revision the page showed; the services refuse the form if the draft has
    changed since. Corrections get one group of fields per analysis, prefixed ``a<analysis id>-``.
    """

    revision = forms.IntegerField(widget=forms.HiddenInput, required=False)
    clinical_indication = forms.CharField(label="Clinical indication", required=False)
    technique = forms.CharField(required=False, help_text="Pre-filled from the DICOM headers of the series.")
    comparison = forms.CharField(required=False, help_text="Earlier studies compared with, or “None available”.")
    findings = forms.CharField(required=False, help_text="Pre-filled from the AI measurements; edit as needed.")
    impression = forms.CharField(required=False, help_text="Required before signing.")
    recommendation = forms.CharField(required=False)
    conclusion = forms.ChoiceField(
        label="Your conclusion",
        choices=CONCLUSION_CHOICES,
        required=False,
        help_text="Required before signing.",
    )
    override_reason = forms.CharField(
        label="Reason for a different conclusion",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Required when your conclusion differs from the AI finding; printed in the report.",
    )

    def __init__(self, *args, analyses=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name, rows in SECTION_WIDGET_ROWS.items():
            self.fields[name].widget = forms.Textarea(attrs={"rows": rows})
        self.analyses = list(analyses)
        for analysis in self.analyses:
            self.fields.update(correction_fields(analysis))

    @classmethod
    def for_version(cls, version, data=None):
        """The editor of a draft: bound to posted data, or showing what the draft holds."""
        analyses = list(version.ordered_analyses())
        if data is not None:
            return cls(data, analyses=analyses)
        initial = {name: getattr(version, name) for name in REPORT_SECTIONS}
        initial["revision"] = version.revision
        initial["conclusion"] = (
            version.conclusion_class if version.differs_from_ai else AGREES_WITH_AI if version.agrees_with_ai else ""
        )
        initial["override_reason"] = version.override_reason
        for correction in version.corrections.all():
            prefix = correction_prefix(correction.analysis_id)
            initial[f"{prefix}largest_diameter"] = correction.largest_diameter
            initial[f"{prefix}volume_ml"] = correction.volume_ml
            initial[f"{prefix}key_slice_number"] = correction.key_slice_number
            initial[f"{prefix}reason"] = correction.reason
        return cls(initial=initial, analyses=analyses)

    def section_fields(self):
        return [self[name] for name in REPORT_SECTIONS]

    def correction_groups(self):
        """(analysis, its bound correction fields) for the template, one group per analysed series."""
        return [
            (analysis, [self[correction_prefix(analysis.pk) + name] for name in CORRECTION_FIELD_NAMES])
            for analysis in self.analyses
        ]

    def content(self):
        """The cleaned form as the keyword arguments of services.save_draft (and sign_report's content)."""
        data = self.cleaned_data
        return {
            "sections": {name: data.get(name, "") for name in REPORT_SECTIONS},
            "conclusion": data.get("conclusion", ""),
            "override_reason": data.get("override_reason", ""),
            "corrections": [
                CorrectionInput(
                    analysis_id=analysis.pk,
                    **{
                        name: data.get(correction_prefix(analysis.pk) + name)
                        for name in ("largest_diameter", "volume_ml", "key_slice_number")
                    },
                    reason=data.get(correction_prefix(analysis.pk) + "reason") or "",
                )
                for analysis in self.analyses
            ],
            "expected_revision": data.get("revision"),
        }

    def add_report_error(self, error):
        """Show a service's refusal next to the field it concerns, or above the form."""
        field = error.field if error.field in self.fields else None
        self.add_error(field, str(error))


CORRECTION_FIELD_NAMES = ("largest_diameter", "volume_ml", "key_slice_number", "reason")


def correction_prefix(analysis_id):
    return f"a{analysis_id}-"


def correction_fields(analysis):
    """The doctor's own diameter, volume and key slice for one analysis; each shows the AI's value beside it."""
    measurements = analysis.measurements or {}
    unit = "mm" if measurements.get("has_physical_scale", False) else "pixels"
    diameter, volume = measurements.get("largest_diameter"), measurements.get("volume_ml")
    key_slice = measurements.get("largest_area_slice_index")
    prefix = correction_prefix(analysis.pk)
    return {
        f"{prefix}largest_diameter": forms.FloatField(
            label=f"Largest diameter ({unit})",
            required=False,
            min_value=0,
            help_text=f"AI: {diameter:.1f} {unit}" if diameter is not None else "AI: not measured",
        ),
        f"{prefix}volume_ml": forms.FloatField(
            label="Volume (mL)",
            required=False,
            min_value=0,
            help_text=f"AI: {volume:.1f} mL" if volume is not None else "AI: not measurable",
        ),
        f"{prefix}key_slice_number": forms.IntegerField(
            label="Key slice",
            required=False,
            min_value=1,
            help_text=f"AI: slice {key_slice + 1}" if key_slice is not None else "AI: no lesion slice",
        ),
        f"{prefix}reason": forms.CharField(
            label="Reason for the correction",
            required=False,
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text="Required with any corrected value; printed in the report.",
        ),
    }


class HoldForm(forms.Form):
    held = forms.TypedChoiceField(
        choices=[("1", "Hold from the patient"), ("0", "Release to the patient")],
        coerce=lambda value: value == "1",
    )


class SignForm(forms.Form):
    password = forms.CharField(
        label="Your password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), required=False
    )
    totp_code = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class AmendForm(forms.Form):
    amendment_note = forms.CharField(
        label="What the amendment changes and why",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed at the top of the amended report.",
    )
