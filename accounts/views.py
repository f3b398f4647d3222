from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import AcceptInvitationForm, InviteUserForm
from accounts.permissions import ability_required
from accounts.services import InvitationError, accept_invitation, find_open_invitation, invite_user


@ability_required("manage_users")
@require_http_methods(["GET", "POST"])
def invite(request):
    form = InviteUserForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = invite_user(
                hospital=request.user.hospital,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                full_name=form.cleaned_data["full_name"],
                patient=form.cleaned_data.get("patient"),
                invited_by=request.user,
                request=request,
            )
        except InvitationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"An invitation link was emailed to {invitation.email}.")
            return redirect("invite-user")
    return render(request, "accounts/invite.html", {"form": form})


@require_http_methods(["GET", "POST"])
def accept(request, token):
    try:
        invitation = find_open_invitation(token)
    except InvitationError as error:
        return render(request, "accounts/invitation_invalid.html", {"message": str(error)}, status=410)
    form = AcceptInvitationForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        try:
            user = accept_invitation(
                token=token, password=form.cleaned_data["password1"], full_name=form.cleaned_data["full_name"]
            )
        except InvitationError as error:
            return render(request, "accounts/invitation_invalid.html", {"message": str(error)}, status=410)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to RadAssist, {user.get_short_name()}.")
        return redirect(user.home_url())
    return render(request, "accounts/accept_invitation.html", {"form": form, "invitation": invitation})
