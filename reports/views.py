from django.shortcuts import render

from accounts.models import Role
from accounts.permissions import role_required


@role_required(Role.PATIENT)
def patient_reports(request):
    return render(request, "reports/patient_reports.html", {})
