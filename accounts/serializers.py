from rest_framework import serializers

from accounts.models import Patient, User


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ("id", "mrn", "full_name", "birth_date", "sex", "created_at")


class CurrentUserSerializer(serializers.ModelSerializer):
    hospital = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = User
        fields = ("id", "email", "full_name", "role", "hospital", "is_api_client")
