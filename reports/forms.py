"""Forms of the report editor. Each form only collects input; the services decide and raise ReportError."""

from django import forms

from reports.models import FINDING_CHOICES


class DraftForm(forms.Form):
    impression = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}), required=False, help_text="Required before signing."
    )
    recommendation = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    conclusion_class = forms.ChoiceField(
        label="Your conclusion",
        choices=[("", "Agree with the AI finding"), *FINDING_CHOICES],
        required=False,
    )
    override_reason = forms.CharField(
        label="Reason for a different conclusion",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Required when your conclusion differs from the AI finding; printed in the report.",
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
