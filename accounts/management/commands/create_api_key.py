from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey, Hospital
from accounts.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key for a hospital's machine client and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--hospital", required=True, help="Hospital slug, e.g. northside")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. pacs")

    def handle(self, *args, hospital, name, **options):
        try:
            hospital = Hospital.objects.get(slug=hospital)
        except Hospital.DoesNotExist:
            raise CommandError(f"No hospital with slug {hospital!r}.") from None
        if ApiKey.objects.for_hospital(hospital).filter(name=name).exists():
            raise CommandError(f"{hospital.name} already has a key named {name!r}; pick another name or revoke it.")
        api_key, secret = create_api_key(hospital=hospital, name=name)
        self.stdout.write(f"API key {api_key.name!r} for {hospital.name} (shown once, store it now):")
        self.stdout.write(secret)
