from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect


@login_required
def home(request):
    """Each role lands on its own page: doctors on the worklist, patients on their reports."""
    return redirect(request.user.home_url())
