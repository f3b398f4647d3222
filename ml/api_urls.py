from django.urls import re_path

from ml import api

urlpatterns = [
    re_path(r"^series/(?P<pk>\d+)/reanalyse/?$", api.reanalyse_series, name="api-series-reanalyse"),
]
