from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm

from accounts.models import ApiKey, Hospital, Invitation, Patient, User
from accounts.services import create_api_key, invite_user, revoke_api_key
from portal.admin import TenantAdmin

admin.site.site_header = "RadAssist administration"
admin.site.site_title = "RadAssist admin"
admin.site.index_title = "Hospital administration"


@admin.register(Hospital)
class HospitalAdmin(TenantAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

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
