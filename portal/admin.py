"""Django admin scoped by tenancy.

Hospital admins are staff users without Django model permissions; the classes
here grant them access to their own hospital's rows only, through the same
``visible_to`` every other view uses. The platform superuser sees everything.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from portal.models import AuditEvent
from portal.pagination import EstimatedCountPaginator


def acts_for_hospital(request, model_admin=None):
    """A hospital admin; on the user management's pages (``it_admin_may_manage``) an IT admin too."""
    user = request.user
    if not user.is_authenticated:
        return False
    if getattr(model_admin, "it_admin_may_manage", False):
        return user.may("manage_users")
    return user.may("administer")


class TenantAdmin(admin.ModelAdmin):
    """Hospital admins manage their own hospital's rows; the hospital field is set for them and never shown."""

    #: Hospital admins may add, change or delete rows of this model (read-only otherwise).
    hospital_admin_can_edit = True
    #: IT admins (user management only) may use this admin too; they never see clinical models.
    it_admin_may_manage = False
    #: A changelist counts its rows up to a limit and estimates beyond it (portal.pagination), and never
    #: counts the unfiltered list a second time: both would read the whole hospital for every page.
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return self.model._default_manager.get_queryset().visible_to(request.user)

    def has_module_permission(self, request):
        return request.user.is_superuser or acts_for_hospital(request, self)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or acts_for_hospital(request, self)

    def has_add_permission(self, request):
        return request.user.is_superuser or (acts_for_hospital(request, self) and self.hospital_admin_can_edit)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser or (acts_for_hospital(request, self) and self.hospital_admin_can_edit)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser or (acts_for_hospital(request, self) and self.hospital_admin_can_edit)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and "hospital" not in exclude:
            exclude.append("hospital")
        return exclude

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if not request.user.is_superuser:
            filters = [f for f in filters if f != "hospital"]
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Choices of related rows come through visible_to, so a foreign hospital's rows cannot even be posted."""
        queryset = db_field.related_model._default_manager.get_queryset()
        if hasattr(queryset, "visible_to"):
            kwargs["queryset"] = queryset.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        queryset = db_field.related_model._default_manager.get_queryset()
        if hasattr(queryset, "visible_to"):
            kwargs["queryset"] = queryset.visible_to(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            if change and obj.hospital_id != request.user.hospital_id:
                raise PermissionDenied
            obj.hospital = request.user.hospital
        super().save_model(request, obj, form, change)


class ReadOnlyTenantAdmin(TenantAdmin):
    """For records nobody edits through the UI (audit trail, machine-written results)."""

    hospital_admin_can_edit = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown inside their parent's page; the parent's admin (through visible_to) decided they may be seen."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "actor_email", "action", "target_type", "target_label", "ip_address")
    list_filter = ("action", "target_type", "hospital")
    search_fields = ("actor_email", "target_id", "target_label")
    date_hierarchy = "created_at"
