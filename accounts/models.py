import hashlib
import secrets
import unicodedata

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from portal.tenancy import TenantOwnedModel, TenantQuerySet

AE_TITLE_MAX_LENGTH = 16


def validate_ae_title(value):
    """A DICOM AE title (PS3.5 AE): 1 to 16 characters, no backslash, no control characters, not all spaces.

    Leading and trailing spaces are not significant in an AE title, so they are not allowed here either:
    a title is stored the way peers will compare it.
    """
    if not value or not value.strip():
        raise ValidationError("An AE title needs at least one character that is not a space.")
    if len(value) > AE_TITLE_MAX_LENGTH:
        raise ValidationError(f"An AE title has at most {AE_TITLE_MAX_LENGTH} characters.")
    if value != value.strip(" "):
        raise ValidationError("An AE title must not start or end with a space.")
    if "\\" in value:
        raise ValidationError("An AE title must not contain a backslash.")
    if any(unicodedata.category(character).startswith("C") for character in value):
        raise ValidationError("An AE title must not contain control characters.")
    if not value.isascii():
        raise ValidationError("An AE title is written in plain ASCII letters, digits and punctuation.")


def default_ae_title(slug):
    """The AE title a hospital gets unless one is chosen: its slug in capitals, cut to 16 characters."""
    return slug.upper()[:AE_TITLE_MAX_LENGTH]


class HospitalQuerySet(TenantQuerySet):
    hospital_lookup = "pk"
    holds_clinical_data = False


class Hospital(models.Model):
    """The tenant: every clinical row belongs to exactly one hospital."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    creates_patients_from_dicom = models.BooleanField(
        default=True,
        help_text="A DICOM PatientID that matches no record creates one from the file's identity; "
        "otherwise such studies wait in the patient-check queue.",
    )
    ae_title = models.CharField(
        "DICOM AE title",
        max_length=AE_TITLE_MAX_LENGTH,
        unique=True,
        validators=[validate_ae_title],
        help_text="The called AE title with which scanners and PACS send this hospital's images by DICOM.",
    )
    dimse_complete_on_release = models.BooleanField(
        "complete DICOM series on release",
        default=True,
        help_text="A series received by DICOM C-STORE completes when the sender releases the association; "
        "otherwise once no instance arrived for the quiet period.",
    )
    hold_reports_by_default = models.BooleanField(
        default=False,
        help_text="New reports start held back from the patient until a doctor releases them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = HospitalQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.ae_title:
            self.ae_title = default_ae_title(self.slug)
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    HOSPITAL_ADMIN = "hospital_admin", "Hospital admin"
    IT_ADMIN = "it_admin", "IT admin (user management only, no clinical data)"
    DOCTOR = "doctor", "Doctor"
    PATIENT = "patient", "Patient"


class UserQuerySet(TenantQuerySet):
    """Staff see the users of their hospital; a patient sees only themselves."""

    patient_user_lookup = "pk"
    holds_clinical_data = False

    def people(self):
        return self.filter(is_api_client=False)


class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.update(is_superuser=True, is_staff=True, hospital=None, role="")
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person (or an API client) who logs in with an email address.

    Platform superusers have no hospital and no role. Everyone else belongs to
    one hospital with one role; hospital admins are Django admin staff, scoped
    to their hospital by the admin classes.
    """

    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    hospital = models.ForeignKey(Hospital, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin site (derived from the role).")
    is_active = models.BooleanField(default=True)
    is_api_client = models.BooleanField(
        default=False, help_text="A machine account behind an API key; it can never log in with a password."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.full_name or self.email

    def save(self, *args, **kwargs):
        self.email = self.email.lower()
        if not self.is_superuser:
            self.is_staff = self.role in (Role.HOSPITAL_ADMIN, Role.IT_ADMIN)
        super().save(*args, **kwargs)

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def is_hospital_admin(self):
        return self.role == Role.HOSPITAL_ADMIN and self.hospital_id is not None

    @property
    def is_it_admin(self):
        return self.role == Role.IT_ADMIN and self.hospital_id is not None

    @property
    def may_see_clinical_data(self):
        """IT admins manage the hospital's users only; every other person sees what their role allows.

        ``portal.tenancy`` asks this, so no clinical row is visible to an IT admin anywhere.
        """
        return self.role != Role.IT_ADMIN

    @property
    def is_doctor(self):
        return self.role == Role.DOCTOR and self.hospital_id is not None

    @property
    def is_patient(self):
        return self.role == Role.PATIENT

    def may(self, ability):
        """True if this user may take ``ability`` (see ``accounts.permissions``; the admin asks this)."""
        from accounts.permissions import user_may

        return user_may(self, ability)

    def home_url(self):
        if self.is_doctor:
            return reverse("worklist")
        if self.is_patient:
            return reverse("patient-reports")
        if self.is_hospital_admin:
            return reverse("hospital-dashboard")
        if self.is_it_admin:
            return reverse("invite-user")
        return reverse("admin:index")


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "", "Unknown"


class PatientQuerySet(TenantQuerySet):
    patient_user_lookup = "user"

    def search(self, text):
        text = (text or "").strip()
        if not text:
            return self
        return self.filter(models.Q(full_name__icontains=text) | models.Q(mrn__icontains=text))


class Patient(models.Model):
    """A patient record of one hospital, identified there by its medical record number (MRN)."""

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=64, help_text="Medical record number; DICOM PatientID.")
    full_name = models.CharField(max_length=200)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    user = models.OneToOneField(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient_record",
        help_text="The patient's own login, if they have one.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["full_name", "mrn"]
        constraints = [models.UniqueConstraint(fields=["hospital", "mrn"], name="unique_mrn_per_hospital")]
        # Name and MRN search ("contains", any case) is served on PostgreSQL by trigram indexes that
        # migration 0004 creates there only (SQLite scans, which is fine at its sizes).
        indexes = [models.Index(fields=["hospital", "full_name", "mrn"], name="patient_by_name_per_hospital")]

    def __str__(self):
        return f"{self.full_name} ({self.mrn})"


class InvitationQuerySet(TenantQuerySet):
    holds_clinical_data = False


class Invitation(models.Model):
    """An emailed link through which a new doctor, admin or patient sets their password.

    Only the SHA-256 of the token is stored; the link itself exists only in the email.
    """

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField()
    full_name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices)
    patient = models.ForeignKey(
        Patient,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="For a patient invitation: the record the new login will see.",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation for {self.email} ({self.get_role_display()})"

    @staticmethod
    def hash_token(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_expired(self):
        return timezone.now() >= self.expires_at

    @property
    def status(self):
        if self.accepted_at:
            return "accepted"
        return "expired" if self.is_expired else "pending"


class ApiKeyQuerySet(TenantQuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A per-hospital key for machine clients (PACS, modalities, scripts).

    The key acts through its own API-client user with doctor-level rights in its
    hospital, so every action it takes is attributed in the audit trail. Only a
    SHA-256 hash is stored; the key is shown once, when created.
    """

    PREFIX = "ra_"

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="api_key", editable=False)
    key_prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["hospital_id", "name"]
        constraints = [models.UniqueConstraint(fields=["hospital", "name"], name="unique_api_key_name_per_hospital")]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @classmethod
    def generate_secret(cls):
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_key(key):
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def is_active(self):
        return self.revoked_at is None


class DicomPeerQuerySet(TenantQuerySet):
    pass


class DicomPeer(TenantOwnedModel):
    """A DICOM node (scanner, PACS) allowed to associate with its hospital's AE title.

    What it stores is filed under its own API-client user, as an API key's uploads are, so every
    upload batch and audit event names the peer that sent it; the user is of the peer's hospital.
    """

    tenant_parent = "user"

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="dicom_peers")
    ae_title = models.CharField(
        "calling AE title", max_length=AE_TITLE_MAX_LENGTH, validators=[validate_ae_title],
        help_text="The AE title the scanner or PACS calls from.",
    )
    host = models.GenericIPAddressField(
        null=True, blank=True, help_text="The IP address it must connect from; empty accepts any address."
    )
    description = models.CharField(max_length=200, blank=True)
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="dicom_peer", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DicomPeerQuerySet.as_manager()

    class Meta:
        ordering = ["hospital_id", "ae_title"]
        verbose_name = "DICOM peer"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "ae_title"], name="unique_dicom_peer_ae_title_per_hospital")
        ]

    def __str__(self):
        return f"{self.ae_title} ({self.host})" if self.host else self.ae_title

    def accepts_address(self, address):
        return not self.host or self.host == address
