from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_ipv46_address

from accounts.models import Hospital
from accounts.services import DicomPeerError, register_dicom_peer


class Command(BaseCommand):
    help = "Let a scanner or PACS send to a hospital's DICOM AE title (C-STORE, C-FIND, C-ECHO)."

    def add_arguments(self, parser):
        parser.add_argument("--hospital", required=True, help="Hospital slug, e.g. northside")
        parser.add_argument("--aet", required=True, help="The calling AE title of the peer, e.g. CT_SCANNER_1")
        parser.add_argument("--host", default=None, help="Accept it only from this IP address, e.g. 10.0.0.5")
        parser.add_argument("--description", default="", help="What the peer is, e.g. 'CT room 2'")

    def handle(self, *args, hospital, aet, host, description, **options):
        try:
            hospital = Hospital.objects.get(slug=hospital)
        except Hospital.DoesNotExist:
            raise CommandError(f"No hospital with slug {hospital!r}.") from None
        if host:
            try:
                validate_ipv46_address(host)
            except ValidationError:
                raise CommandError(f"--host must be an IP address, not {host!r}.") from None
        try:
            peer = register_dicom_peer(hospital=hospital, ae_title=aet, host=host, description=description)
        except DicomPeerError as error:
            raise CommandError(str(error)) from None
        where = f"from {peer.host}" if peer.host else "from any address"
        self.stdout.write(f"{peer.ae_title} may now associate with {hospital.ae_title} ({hospital.name}) {where}.")
