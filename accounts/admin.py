from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.core.exceptions import PermissionDenied

from accounts.models import ApiKey, DicomPeer, Hospital, Invitation, Patient, User
from accounts.services import create_api_key, invite_user, register_dicom_peer, remove_dicom_peer, revoke_api_key
from portal.admin import TenantAdmin

admin.site.site_header = "RadAssist administration"
admin.site.site_title = "RadAssist admin"
admin.site.index_title = "Hospital administration"


#: Fields of their own hospital that a hospital admin may change.
HOSPITAL_ADMIN_SETTINGS = ("hold_reports_by_default",)


@admin.register(Hospital)
class HospitalAdmin(TenantAdmin):
    list_display = ("name", "slug", "ae_title", "dimse_complete_on_release", "hold_reports_by_default", "created_at")
    search_fields = ("name", "slug", "ae_title")
    prepopulated_fields = {"slug": ("name",)}

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        """A hospital admin sets their own hospital's policies (HOSPITAL_ADMIN_SETTINGS); the rest is read-only."""
        return request.user.is_superuser or (
            request.user.is_hospital_admin and (obj is None or obj.pk == request.user.hospital_id)
        )

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ()
        return [field.name for field in Hospital._meta.fields if field.name not in HOSPITAL_ADMIN_SETTINGS]

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser and obj.pk != request.user.hospital_id:
            raise PermissionDenied
        obj.save()

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


@admin.register(User)
class UserAdmin(TenantAdmin, DjangoUserAdmin):
    """Superusers manage everyone; hospital admins change their own hospital's people but invite new ones."""

    add_form = UserCreationForm
    it_admin_may_manage = True
    ordering = ("email",)
    list_display = ("email", "full_name", "role", "hospital", "is_active", "is_api_client", "last_login")
    list_select_related = ("hospital",)
    list_filter = ("role", "is_active", "is_api_client", "hospital")
    search_fields = ("email", "full_name")
    readonly_fields = ("last_login", "date_joined", "is_api_client")
    superuser_fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name", "hospital", "role", "is_api_client")}),
        ("Rights", {"fields": ("is_active", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    hospital_admin_fieldsets = (
        (None, {"fields": ("email",)}),
        ("Person", {"fields": ("full_name", "role", "is_active", "is_api_client")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"fields": ("email", "usable_password", "password1", "password2")}),
        ("Person", {"fields": ("full_name", "hospital", "role")}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        return self.superuser_fieldsets if request.user.is_superuser else self.hospital_admin_fieldsets

    def get_exclude(self, request, obj=None):
        return None

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk and not request.user.is_superuser:
            readonly += ["role", "is_active"]
        if obj is not None and obj.is_api_client:
            readonly += ["role"]
        return readonly

    def has_add_permission(self, request):
        """Hospital admins add people by invitation, so every new login chooses its own password."""
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        """Clinical records keep their authors: people are deactivated, never deleted, by hospital admins."""
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if request.user.is_superuser:
            obj.save()
            return
        super().save_model(request, obj, form, change)


@admin.register(Patient)
class PatientAdmin(TenantAdmin):
    list_display = ("full_name", "mrn", "birth_date", "sex", "user", "hospital")
    list_select_related = ("user", "hospital")
    list_filter = ("sex", "hospital")
    search_fields = ("full_name", "mrn")
    raw_id_fields = ()

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if not request.user.is_superuser else ()


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ("hospital", "email", "full_name", "role", "patient")


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    form = InvitationForm
    it_admin_may_manage = True
    list_display = ("email", "role", "full_name", "status", "created_at", "expires_at", "invited_by")
    list_select_related = ("invited_by",)
    list_filter = ("role", "hospital")
    search_fields = ("email", "full_name")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        hospital = obj.hospital if request.user.is_superuser else request.user.hospital
        invitation = invite_user(
            hospital=hospital,
            email=obj.email,
            role=obj.role,
            invited_by=request.user,
            full_name=obj.full_name,
            patient=obj.patient,
            request=request,
        )
        obj.pk = invitation.pk
        obj.__dict__.update(invitation.__dict__)
        messages.info(request, f"An invitation link was emailed to {invitation.email}.")


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("hospital", "name", "revoked_at")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    form = ApiKeyForm
    list_display = ("name", "key_prefix", "hospital", "created_at", "last_used_at", "revoked_at")
    list_filter = ("hospital",)
    readonly_fields = ("key_prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_selected"]

    def get_fields(self, request, obj=None):
        fields = ["name", "key_prefix", "created_at", "last_used_at", "revoked_at"]
        if obj is None:
            fields = ["name"]
        if request.user.is_superuser:
            fields.insert(0, "hospital")
        return fields

    def get_readonly_fields(self, request, obj=None):
        readonly = list(self.readonly_fields)
        if obj is not None:
            readonly.append("name")
        return readonly

    def save_model(self, request, obj, form, change):
        if change:
            return
        hospital = obj.hospital if request.user.is_superuser else request.user.hospital
        api_key, secret = create_api_key(hospital=hospital, name=obj.name, created_by=request.user)
        obj.pk = api_key.pk
        obj.__dict__.update(api_key.__dict__)
        messages.warning(request, f"Copy this key now, it is not shown again: {secret}")

    def delete_model(self, request, obj):
        revoke_api_key(api_key=obj, revoked_by=request.user)

    def delete_queryset(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key=api_key, revoked_by=request.user)

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            revoke_api_key(api_key=api_key, revoked_by=request.user)
        messages.success(request, "The selected keys are revoked.")


class DicomPeerForm(forms.ModelForm):
    #: The hospital a hospital admin acts for (their form has no hospital field); set by the admin class.
    acting_hospital = None

    class Meta:
        model = DicomPeer
        fields = ("hospital", "ae_title", "host", "description")

    def clean(self):
        cleaned = super().clean()
        hospital = cleaned.get("hospital") or self.acting_hospital or getattr(self.instance, "hospital", None)
        ae_title = cleaned.get("ae_title")
        if hospital is not None and ae_title:
            others = DicomPeer.objects.for_hospital(hospital).filter(ae_title=ae_title).exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("ae_title", f"{hospital.name} already has a DICOM peer with this AE title.")
        return cleaned


@admin.register(DicomPeer)
class DicomPeerAdmin(TenantAdmin):
    """The scanners and PACS that may send to (and query) the hospital's AE title."""

    form = DicomPeerForm
    list_display = ("ae_title", "host", "description", "hospital", "created_at")
    list_filter = ("hospital",)
    search_fields = ("ae_title", "host", "description")

    def get_readonly_fields(self, request, obj=None):
        """A peer stays with its hospital: its machine user belongs there (register it again elsewhere)."""
        return ("hospital",) if obj is not None and request.user.is_superuser else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if not request.user.is_superuser:
            form.acting_hospital = request.user.hospital
        return form

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        hospital = obj.hospital if request.user.is_superuser else request.user.hospital
        peer = register_dicom_peer(
            hospital=hospital, ae_title=obj.ae_title, host=obj.host, description=obj.description
        )
        obj.pk = peer.pk
        obj.__dict__.update(peer.__dict__)

    def delete_model(self, request, obj):
        remove_dicom_peer(peer=obj)

    def delete_queryset(self, request, queryset):
        for peer in queryset:
            remove_dicom_peer(peer=peer)
