"""The report PDF, rendered by WeasyPrint from ``templates/reports/pdf/report.html``.

Rendering never touches the network: ``base_url`` is the local ``static/reports/pdf`` folder
(stylesheet and embedded DejaVu fonts) and :class:`LocalOnlyFetcher` refuses every URL that is
not one of those files or one of the key images already read from private storage.
Only the reports worker imports this module (WeasyPrint takes most of a second to import).
"""

import mimetypes
from pathlib import Path

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from reports.rendering import KEY_IMAGE_SCHEME, report_context


def pdf_static_folder():
    return Path(finders.find("reports/pdf/report.css")).parent


class RefusedResource(ValueError):
    """Rendering asked for something that is neither a bundled static file nor a prepared key image."""


class LocalOnlyFetcher(URLFetcher):
    """Serves the bundled stylesheet and fonts and the prepared key images; refuses everything else."""

    def __init__(self, *, static_folder, images):
        super().__init__(fail_on_errors=True)
        self.static_folder = static_folder.resolve()
        self.images = images

    def fetch(self, url, headers=None):
        if url.startswith(KEY_IMAGE_SCHEME):
            name = url.removeprefix(KEY_IMAGE_SCHEME)
            if name not in self.images:
                raise RefusedResource(f"unknown key image {name!r}")
            return URLFetcherResponse(url, self.images[name], {"Content-Type": "image/jpeg"})
        if url.startswith("file:"):
            path = Path(URLFetcherResponse(url).path).resolve()
            if path.is_file() and path.is_relative_to(self.static_folder):
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": content_type})
        raise RefusedResource(f"report rendering may not fetch {url!r}")


def render_report_pdf(*, version):
    """The PDF of one version, as bytes. Reads its key images from private storage; fetches nothing else."""
    context = report_context(version, with_pixels=True)
    static_folder = pdf_static_folder()
    html = render_to_string("reports/pdf/report.html", context)
    fetcher = LocalOnlyFetcher(
        static_folder=static_folder, images={view.image_name: view.jpeg for view in context["key_images"]}
    )
    return HTML(string=html, base_url=static_folder.as_uri() + "/", url_fetcher=fetcher).write_pdf()
