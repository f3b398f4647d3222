import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.urls import reverse
from django.utils import timezone

from portal.tenancy import TenantQuerySet


class HospitalQuerySet(TenantQuerySet):
    hospital_lookup = "pk"


class Hospital(models.Model):
    """The tenant: every clinical row belongs to exactly one hospital."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    creates_patients_from_dicom = models.BooleanField(
        default=True,
        help_text="A DICOM PatientID that matches no record creates one from the file's identity; "
        "otherwise such studies wait in the patient-check queue.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = HospitalQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    HOSPITAL_ADMIN = "hospital_admin", "Hospital admin"
    DOCTOR = "doctor", "Doctor"
    PATIENT = "patient", "Patient"


class UserQuerySet(TenantQuerySet):
    """Staff see the users of their hospital; a patient sees only themselves."""

    patient_user_lookup = "pk"

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
            self.is_staff = self.role == Role.HOSPITAL_ADMIN
        super().save(*args, **kwargs)

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def is_hospital_admin(self):
        return self.role == Role.HOSPITAL_ADMIN and self.hospital_id is not None

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
    pass


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
