"""The one place that decides which rows a user may see.

Every tenant-owned model uses a manager built from :class:`TenantQuerySet`, and
every view, admin class, form choice and download asks ``Model.objects.visible_to(user)``;
every REST API view set gets it from :class:`VisibleToFilterBackend`, the first of
``REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]``, so a view set cannot forget it.
Tenant-owned rows that have a tenant-owned parent derive their hospital from it
(:class:`TenantOwnedModel`), so a child can never belong to another hospital than its
parent. Nothing filters by hospital by hand, so an
object of another hospital is simply not found (404), exactly like one that
does not exist.

Rules:
- anonymous users see nothing;
- platform superusers see everything;
- hospital admins and doctors (and API keys, which act as doctors) see every
  row of their own hospital;
- patients see only rows tied to their own patient record, and only for models
  that say how (``patient_user_lookup``); models may narrow further what a
  patient sees by overriding :meth:`TenantQuerySet.narrow_for_patient`;
- people whose ``may_see_clinical_data`` is False (IT admins) see only the rows
  of models that hold no clinical data (``holds_clinical_data = False``: the
  hospital, its users and invitations).
"""

from django.db import models
from rest_framework.filters import BaseFilterBackend


class TenantQuerySet(models.QuerySet):
    #: Path from the model to its Hospital, as a lookup ("hospital", "study__hospital").
    hospital_lookup = "hospital"
    #: Path from the model to the patient's login User, or None if patients never see this model.
    patient_user_lookup = None
    #: False for models an IT admin manages (users, invitations): they carry no clinical data.
    holds_clinical_data = True

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
        if self.holds_clinical_data and not getattr(user, "may_see_clinical_data", True):
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

    def bulk_create(self, objs, *args, **kwargs):
        """Bulk inserts skip ``save``: derive and check each row's hospital here too."""
        objs = list(objs)
        if objs and issubclass(self.model, TenantOwnedModel) and self.model.tenant_parent is not None:
            field = self.model._meta.get_field(self.model.tenant_parent)
            unloaded = {
                getattr(obj, field.attname) for obj in objs
                if not field.is_cached(obj) and getattr(obj, field.attname) is not None
            }
            parent_hospitals = dict(
                field.related_model._default_manager.filter(pk__in=unloaded).values_list("pk", "hospital_id")
            ) if unloaded else {}
            for obj in objs:
                obj.derive_hospital(parent_hospitals=parent_hospitals)
        return super().bulk_create(objs, *args, **kwargs)


class VisibleToFilterBackend(BaseFilterBackend):
    """Narrows every REST API queryset (lists, details, actions using ``get_object``) to ``visible_to``."""

    def filter_queryset(self, request, queryset, view):
        return queryset.visible_to(request.user)


class HospitalMismatch(ValueError):
    """A tenant-owned row was about to be saved under another hospital than its parent's."""


class TenantOwnedModel(models.Model):
    """A row owned by a hospital and, through ``tenant_parent``, by a parent row of the same hospital.

    ``save`` (and the manager's ``bulk_create``) set ``hospital_id`` from the parent when it is missing,
    and refuse a row whose hospital differs from its parent's: a series cannot belong to another
    hospital than its study, nor an instance to another than its series.
    """

    #: Name of the foreign key to the tenant-owned parent the hospital is derived from (None: a root row).
    tenant_parent = None

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.derive_hospital()
        super().save(*args, **kwargs)

    def derive_hospital(self, *, parent_hospitals=None):
        """Set the hospital from the parent's, or raise :class:`HospitalMismatch` if they differ.

        ``parent_hospitals`` maps parent ids to hospital ids for parents not loaded on the row (bulk
        inserts look them up in one query); otherwise an unloaded parent costs one query.
        """
        if self.tenant_parent is None:
            return
        field = self._meta.get_field(self.tenant_parent)
        parent_id = getattr(self, field.attname)
        if parent_id is None:
            return
        if field.is_cached(self):
            parent_hospital_id = field.get_cached_value(self).hospital_id
        elif parent_hospitals is not None and parent_id in parent_hospitals:
            parent_hospital_id = parent_hospitals[parent_id]
        else:
            parent_hospital_id = getattr(self, self.tenant_parent).hospital_id
        if self.hospital_id is None:
            self.hospital_id = parent_hospital_id
        elif self.hospital_id != parent_hospital_id:
            raise HospitalMismatch(
                f"{type(self).__name__} of hospital {self.hospital_id} cannot belong to "
                f"{field.related_model.__name__} {parent_id} of hospital {parent_hospital_id}."
            )
