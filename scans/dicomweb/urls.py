"""DICOMweb URLs (PS3.18 resources), included at ``/dicomweb/``; no trailing slashes, as DICOMweb clients expect."""

from django.urls import path, register_converter

from scans.dicomweb import views


class DicomUidConverter:
    """A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1)."""

    regex = r"[0-9][0-9.]{0,63}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class FrameListConverter:
    regex = r"[0-9]+(?:,[0-9]+)*"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(DicomUidConverter, "uid")
register_converter(FrameListConverter, "frames")

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
]
