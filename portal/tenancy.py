"""The one place that decides which rows a user may see.

Every tenant-owned model uses a manager built from :class:`TenantQuerySet`, and
every view, API view set, admin class, form choice and download asks
``Model.objects.visible_to(user)``. Nothing filters by hospital by hand, so an
object of another hospital is simply not found (404), exactly like one that
does not exist.

Rules:
- anonymous users see nothing;
- platform superusers see everything;
- hospital admins and doctors (and API keys, which act as doctors) see every
  row of their own hospital;
- patients see only rows tied to their own patient record, and only for models
  that say how (``patient_user_lookup``); models may narrow further what a
  patient sees by overriding :meth:`TenantQuerySet.narrow_for_patient`.
"""

from django.db import models


class TenantQuerySet(models.QuerySet):
    #: Path from the model to its Hospital, as a lookup ("hospital", "study__hospital").
    hospital_lookup = "hospital"
    #: Path from the model to the patient's login User, or None if patients never see this model.
    patient_user_lookup = None

    def for_hospital(self, hospital):
        """Rows owned by one hospital, for code that acts for the hospital itself (tasks, commands)."""
        return self.filter(**{self.hospital_lookup: getattr(hospital, "pk", hospital)})

    def visible_to(self, user):
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        if user.hospital_id is None:
            return self.none()
        rows = self.filter(**{self.hospital_lookup: user.hospital_id})
        if user.is_patient:
            if self.patient_user_lookup is None:
                return rows.none()
            return self.narrow_for_patient(rows.filter(**{self.patient_user_lookup: user}), user)
        return rows

    def narrow_for_patient(self, rows, user):
        """Hook for models whose patients see only some of their own rows (e.g. signed reports only)."""
        return rows


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    pass
