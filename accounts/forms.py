from django import forms
from django.contrib.auth import password_validation

from accounts.models import Patient, Role
from accounts.permissions import IT_ADMIN_INVITABLE_ROLES


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


def invitable_role_choices(user):
    roles = IT_ADMIN_INVITABLE_ROLES if user.is_it_admin else Role.values
    return [(value, label) for value, label in Role.choices if value in roles]


class InviteUserForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, required=False)
    #: No role is preselected: the inviter chooses one, so nobody gets the most privileged role by oversight.
    role = forms.ChoiceField(choices=[("", "Choose a role"), *Role.choices])
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.none(),
        required=False,
        help_text="For a patient: the record their login will see.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = Patient.objects.visible_to(user).filter(user__isnull=True)
        if user.is_it_admin:
            self.fields["role"].choices = [("", "Choose a role"), *invitable_role_choices(user)]
            del self.fields["patient"]
