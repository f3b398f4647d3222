"""Every role rule, in one place: who may upload, read clinical data, sign, reanalyse, administer.

Which *rows* a user sees is decided by ``visible_to`` (``portal.tenancy``); this module decides which
*actions* a user may take. Views use :func:`ability_required`, the REST API and DICOMweb use
:func:`api_permission`, the admin asks ``user.may(...)``, and templates read ``abilities`` (context
processor :func:`abilities`). A user without the ability gets 404 on pages, as if the page did not exist.

Roles and what they may do:

=====================  ======  ========  ==============  ========  =======
ability                doctor  API key   hospital admin  IT admin  patient
=====================  ======  ========  ==============  ========  =======
``upload``             yes     yes       yes             no        own record
``read_clinical``      yes     yes       yes             no        no
``edit_reports``       yes     yes       no              no        no
``sign``               yes     no        no              no        no
``hold_reports``       yes     no        no              no        no
``reanalyse``          yes     yes       no              no        no
``administer``         no      no        yes             no        no
``manage_users``       no      no        yes             yes       no
``read_own_reports``   no      no        no              no        yes
=====================  ======  ========  ==============  ========  =======

API keys act as doctors of their hospital but never sign: a signature is a person's; holding a report
back from its patient, or releasing it, is a doctor's decision too. IT admins manage the hospital's
people (invitations, the user admin) and nothing else: ``portal.tenancy`` also hides every clinical row
from them (``User.may_see_clinical_data``).
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from rest_framework import permissions

#: Roles an IT admin may invite: staff only, since a patient's login is tied to a patient record.
#: The roles an IT admin may invite (``accounts.models.Role`` values; this module imports no model, so that
#: ``User.may`` can ask it without an import cycle).
IT_ADMIN_INVITABLE_ROLES = ("hospital_admin", "it_admin", "doctor")


def _in_hospital(user):
    return bool(user and user.is_authenticated and user.is_active and user.hospital_id is not None)


def _is_doctor(user):
    return _in_hospital(user) and user.is_doctor


def _is_hospital_admin(user):
    return _in_hospital(user) and user.is_hospital_admin


def _is_it_admin(user):
    return _in_hospital(user) and user.is_it_admin


def _is_patient(user):
    return _in_hospital(user) and user.is_patient


RULES = {
    "upload": lambda user: _is_doctor(user) or _is_hospital_admin(user) or _is_patient(user),
    "read_clinical": lambda user: _is_doctor(user) or _is_hospital_admin(user),
    "edit_reports": _is_doctor,
    "sign": lambda user: _is_doctor(user) and not user.is_api_client,
    "hold_reports": lambda user: _is_doctor(user) and not user.is_api_client,
    "reanalyse": _is_doctor,
    "administer": _is_hospital_admin,
    "manage_users": lambda user: _is_hospital_admin(user) or _is_it_admin(user),
    "read_own_reports": _is_patient,
}
ABILITIES = tuple(RULES)


def user_may(user, ability):
    """True if ``user`` may take the action ``ability`` (one of :data:`ABILITIES`)."""
    return RULES[ability](user)


def ability_required(ability):
    """Only users with ``ability`` may use the page; others get 404 (anonymous users go to the login page)."""
    if ability not in RULES:
        raise ValueError(f"unknown ability {ability!r}; expected one of {ABILITIES}")

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not user_may(request.user, ability):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def api_permission(ability, *, message):
    """A DRF permission class for ``ability``, answering 403 with ``message`` to others."""

    class MayTakeAction(permissions.BasePermission):
        def has_permission(self, request, view):
            return user_may(request.user, ability)

    MayTakeAction.message = message
    MayTakeAction.__name__ = MayTakeAction.__qualname__ = f"May{ability.title().replace('_', '')}"
    return MayTakeAction


IsClinicalStaff = api_permission("read_clinical", message="This endpoint is for hospital staff and API keys.")
MayReanalyse = api_permission("reanalyse", message="Only doctors and API keys may request a reanalysis.")


def abilities(request):
    """Template context: ``abilities.sign``, ``abilities.upload``, ... for the logged-in user."""
    user = getattr(request, "user", None)
    return {"abilities": {ability: user_may(user, ability) for ability in ABILITIES}}
