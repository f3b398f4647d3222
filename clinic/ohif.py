"""OHIF Viewer v3 in the portal, at ``/viewer/ohif/``: its page, and a configuration that reads our own DICOMweb.

OHIF's built files (``make ohif`` unpacks npm's ``@ohif/app`` into ``settings.OHIF_DIST_DIR``) are
static files under ``STATIC_URL/ohif/``. OHIF loads its code from ``window.PUBLIC_URL`` and its
index.html names its files with absolute paths, so that page is served here with both pointed at
the static files, and ``app-config.js`` is made here. The viewer reads studies from ``/dicomweb``
on the same origin with the doctor's session cookie: DICOMweb's own views check visibility and
audit every read, exactly as for any other client.
"""

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.http import HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import urlencode

from accounts.permissions import ability_required
from scans.dicomweb.qido import dicomweb_root
from scans.models import Instance, Series, Study

ROUTER_BASENAME = "/viewer/ohif"
PUBLIC_URL_SETTING = 'window.PUBLIC_URL="/"'
ROOT_RELATIVE_REFERENCE = re.compile(r'(\b(?:href|src|content)=")/(?!/)')
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True)
class ViewerPage:
    html: str
    content_security_policy: str


def content_security_policy(inline_scripts):
    """The OHIF page's own policy; the portal's pages keep their stricter one.

    OHIF needs more than the portal's ``script-src 'self'``: ``'wasm-unsafe-eval'`` to compile the
    WebAssembly image decoders (JPEG 2000, JPEG-LS, HTJ2K) and the rendering and segmentation
    helpers; ``blob:`` workers, which its decoders and the segmentation tools start; inline styles,
    which its components set; and its two inline scripts in index.html (``window.PUBLIC_URL``),
    allowed by their sha256, not by ``'unsafe-inline'``. Everything is still fetched from this
    origin only: no eval of JavaScript, no other host, no plugins, no framing.
    """
    script_hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'" for script in inline_scripts
    )
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'wasm-unsafe-eval' {script_hashes}",
        "worker-src": "'self' blob:",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "media-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


@lru_cache(maxsize=4)
def viewer_page_from(index_path, modified_at, *, public_url, config_url):
    """OHIF's index.html with its files found under ``public_url``; cached per file version."""
    html = Path(index_path).read_text(encoding="utf-8")
    if PUBLIC_URL_SETTING not in html:
        raise ValueError(f"{index_path} does not set {PUBLIC_URL_SETTING}: not an @ohif/app build this portal knows")
    html = html.replace(PUBLIC_URL_SETTING, f"window.PUBLIC_URL={json.dumps(public_url)}")
    html = ROOT_RELATIVE_REFERENCE.sub(lambda match: f"{match.group(1)}{public_url}", html)
    html = html.replace(f'"{public_url}app-config.js"', f'"{config_url}"')
    return ViewerPage(html=html, content_security_policy=content_security_policy(INLINE_SCRIPT.findall(html)))


def index_path():
    return Path(settings.OHIF_DIST_DIR) / "index.html"


def is_installed():
    return index_path().is_file()


def study_viewer_url(study_instance_uid):
    return f"{reverse('ohif-viewer')}?{urlencode({'StudyInstanceUIDs': study_instance_uid})}"


def has_dicom_images():
    """Annotation for a Study queryset: whether the study has acquired DICOM instances, which OHIF can show."""
    return Exists(Instance.objects.filter(
        series__study=OuterRef("pk"), series__in=Series.objects.acquired(), file_format=Instance.Format.DICOM
    ))


def viewer_url_for(study):
    """Where OHIF opens ``study``; None when OHIF is not installed or the study has only PNG/JPG images."""
    if not is_installed():
        return None
    if not Study.objects.filter(pk=study.pk).annotate(has_dicom=has_dicom_images()).filter(has_dicom=True).exists():
        return None
    return study_viewer_url(study.study_instance_uid)


def viewer_config(request):
    """OHIF's ``window.config``: one read-only DICOMweb data source, this portal's own."""
    root = dicomweb_root(request)
    return {
        "routerBasename": ROUTER_BASENAME,
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": False,
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 25},
        "defaultDataSourceName": "radassist",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "radassist",
                "configuration": {
                    "friendlyName": "RadAssist",
                    "name": "radassist",
                    "qidoRoot": root,
                    "wadoRoot": root,
                    "wadoUriRoot": f"{root}/wado",
                    "qidoSupportsIncludeField": False,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsReject": False,
                    "supportsStow": False,
                    "dicomUploadEnabled": False,
                    "omitQuotationForMultipartRequest": True,
                    "bulkDataURI": {"enabled": True},
                },
            }
        ],
    }


@ability_required("read_clinical")
def viewer_page(request, route=""):
    """Every route of the OHIF app (``/viewer/ohif/viewer?StudyInstanceUIDs=...``) answers its index.html."""
    path = index_path()
    if not path.is_file():
        return render(request, "clinic/ohif_missing.html", status=404)
    page = viewer_page_from(
        str(path), path.stat().st_mtime_ns, public_url=static("ohif/"), config_url=reverse("ohif-config")
    )
    response = HttpResponse(page.html)
    response["Content-Security-Policy"] = page.content_security_policy
    return response


@ability_required("read_clinical")
def app_config(request):
    config = json.dumps(viewer_config(request), indent=2)
    response = HttpResponse(f"window.config = {config};\n", content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
