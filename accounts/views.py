from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.forms import AcceptInvitationForm, InviteUserForm
from accounts.models import Patient, Role, User
from accounts.permissions import role_required
from accounts.services import InvitationError, accept_invitation, find_open_invitation, invite_user


@role_required(Role.HOSPITAL_ADMIN)
def hospital_dashboard(request):
    from reports.models import ReportVersion
    from scans.models import Study

    user = request.user
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    signed_this_month = ReportVersion.objects.visible_to(user).signed().filter(signed_at__gte=month_start)
    counts = [
        ("Active users", User.objects.visible_to(user).people().filter(is_active=True).count()),
        ("Patients", Patient.objects.visible_to(user).count()),
        ("Studies this month", Study.objects.visible_to(user).filter(created_at__gte=month_start).count()),
        ("Reports signed this month", signed_this_month.values("report").distinct().count()),
    ]
    context = {"counts": counts, "month": month_start}
    return render(request, "accounts/hospital_dashboard.html", context)


@role_required(Role.HOSPITAL_ADMIN)
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
                patient=form.cleaned_data["patient"],
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
