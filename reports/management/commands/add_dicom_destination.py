from django.core.management.base import BaseCommand, CommandError

from accounts.models import Hospital
from reports.outbox import InvalidDestination, add_destination, parse_header


class Command(BaseCommand):
    help = (
        "Add a destination that receives a hospital's AI results (SEG, SR) and signed reports (Encapsulated PDF): "
        "DICOMweb STOW-RS (--dicomweb-url) or DICOM C-STORE (--aet, --host, --port)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--hospital", required=True, help="Hospital slug, e.g. northside")
        parser.add_argument("--name", required=True, help="What the destination is, e.g. pacs")
        parser.add_argument("--dicomweb-url", default="", help="DICOMweb service root, e.g. https://pacs/dicom-web")
        parser.add_argument("--header", action="append", default=[],
                            help='Extra HTTP header for STOW-RS, e.g. "Authorization: Bearer X" (repeatable)')
        parser.add_argument("--aet", default="", help="The destination's AE title (C-STORE)")
        parser.add_argument("--host", default="", help="The destination's host name or address (C-STORE)")
        parser.add_argument("--port", type=int, default=None, help="The destination's DICOM port (C-STORE)")
        parser.add_argument("--calling-aet", default="", help="The AE title RadAssist calls from (C-STORE)")
        parser.add_argument("--no-ai-results", action="store_true", help="Do not send the AI's SEG and SR")
        parser.add_argument("--no-signed-reports", action="store_true", help="Do not send signed reports")

    def handle(self, *args, hospital, name, dicomweb_url, header, aet, host, port, calling_aet, **options):
        try:
            hospital = Hospital.objects.get(slug=hospital)
        except Hospital.DoesNotExist:
            raise CommandError(f"No hospital with slug {hospital!r}.") from None
        try:
            headers = dict(parse_header(text) for text in header)
            destination = add_destination(
                hospital=hospital, name=name, url=dicomweb_url, headers=headers, ae_title=aet, host=host, port=port,
                calling_ae_title=calling_aet, sends_ai_results=not options["no_ai_results"],
                sends_signed_reports=not options["no_signed_reports"],
            )
        except (InvalidDestination, ValueError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Destination {destination.name!r} for {hospital.name}: {destination.get_kind_display()} "
                          f"to {destination.address}.")
