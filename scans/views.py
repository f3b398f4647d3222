from django.shortcuts import render

from accounts.models import Role
from accounts.permissions import role_required


@role_required(Role.DOCTOR, Role.HOSPITAL_ADMIN)
def worklist(request):
    return render(request, "scans/worklist.html", {})
