"""DICOMweb URLs (PS3.18 resources), included at ``/dicomweb/``; no trailing slashes, as DICOMweb clients expect."""

from django.urls import path, re_path, register_converter

from scans.dicomweb import views


class DicomUidConverter:
    """A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1)."""

    regex = r"[0-9][0-9.]{0,63}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class FrameListConverter:
    regex = r"[0-9]{1,9}(?:,[0-9]{1,9})*"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(DicomUidConverter, "uid")
register_converter(FrameListConverter, "frames")


class BulkDataPathConverter:
    """A tag, or sequence tag / item index / tag ... down to a nested one: ``7FE00010``, ``00880200/0/7FE00010``."""

    regex = r"[0-9A-Fa-f]{8}(?:/[0-9]{1,6}/[0-9A-Fa-f]{8}){0,8}"

    def to_python(self, value):
        return value.upper()

    def to_url(self, value):
        return value


register_converter(BulkDataPathConverter, "bulkpath")

app_name = "dicomweb"

study = "studies/<uid:study_uid>"
series = f"{study}/series/<uid:series_uid>"
instance = f"{series}/instances/<uid:instance_uid>"

urlpatterns = [
    path("studies", views.StudiesView.as_view(), name="studies"),
    path("series", views.SeriesSearchView.as_view(), name="series-search"),
    path("instances", views.InstanceSearchView.as_view(), name="instance-search"),
    path(study, views.RetrieveView.as_view(), name="study"),
    path(f"{study}/metadata", views.MetadataView.as_view(), name="study-metadata"),
    path(f"{study}/series", views.SeriesSearchView.as_view(), name="study-series-search"),
    path(f"{study}/instances", views.InstanceSearchView.as_view(), name="study-instance-search"),
    path(series, views.RetrieveView.as_view(), name="series"),
    path(f"{series}/metadata", views.MetadataView.as_view(), name="series-metadata"),
    path(f"{series}/instances", views.InstanceSearchView.as_view(), name="series-instance-search"),
    path(instance, views.RetrieveView.as_view(), name="instance"),
    path(f"{instance}/metadata", views.MetadataView.as_view(), name="instance-metadata"),
    path(f"{instance}/rendered", views.RenderedView.as_view(), name="instance-rendered"),
    path(f"{instance}/frames/<frames:frame_list>/rendered", views.RenderedView.as_view(), name="frame-rendered"),
    path(f"{instance}/frames/<frames:frame_list>", views.FramesView.as_view(), name="frames"),
    path(f"{instance}/bulkdata/<bulkpath:tag_path>", views.BulkDataView.as_view(), name="bulkdata"),
    path(f"{study}/rendered", views.RenderedCollectionView.as_view(), name="study-rendered"),
    path(f"{series}/rendered", views.RenderedCollectionView.as_view(), name="series-rendered"),
    path(f"{study}/thumbnail", views.ThumbnailView.as_view(), name="study-thumbnail"),
    path(f"{series}/thumbnail", views.ThumbnailView.as_view(), name="series-thumbnail"),
    path(f"{instance}/thumbnail", views.ThumbnailView.as_view(), name="instance-thumbnail"),
    path("wado", views.WadoUriView.as_view(), name="wado-uri"),
    # Anything else under /dicomweb/ is answered 404 in JSON, as DICOMweb clients read errors; unnamed on purpose.
    re_path(r"^.*$", views.unknown_resource),
]
