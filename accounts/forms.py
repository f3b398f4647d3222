from django import forms
from django.contrib.auth import password_validation

from accounts.models import Patient, Role


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Your full name")
    password1 = forms.CharField(
        label="Choose a password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Repeat the password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, invitation, **kwargs):
        self.invitation = invitation
        super().__init__(*args, **kwargs)
        self.fields["full_name"].initial = invitation.full_name

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            try:
                password_validation.validate_password(password1)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class InviteUserForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, required=False)
    role = forms.ChoiceField(choices=Role.choices)
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.none(),
        required=False,
        help_text="For a patient: the record their login will see.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = Patient.objects.visible_to(user).filter(user__isnull=True)
