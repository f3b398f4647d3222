"""Static files in production: whitenoise serves collectstatic's output, the API docs included, with no CDN."""

import re

from django.contrib.staticfiles import finders

from tests.deploy.test_settings_deploy import manage, production_environment


def test_api_docs_page_loads_its_assets_from_our_own_static_files(client, superuser):
    client.force_login(superuser)

    page = client.get("/api/docs/").content.decode()
    assets = re.findall(r"""(?:src|href)=["']?/static/([^"'\s>]+)""", page)

    assert any("swagger-ui-dist" in asset for asset in assets)
    assert [asset for asset in assets if finders.find(asset) is None] == []
    assert not re.search(r"""(?:src|href)=["']?https?://""", page)


def test_production_collects_static_files_for_whitenoise_compression(tmp_path):
    script = (
        "from django.conf import settings as s; "
        "print(s.STORAGES['staticfiles']['BACKEND'], s.WHITENOISE_USE_FINDERS, s.MIDDLEWARE.index("
        "'whitenoise.middleware.WhiteNoiseMiddleware') == s.MIDDLEWARE.index("
        "'django.middleware.security.SecurityMiddleware') + 1)"
    )
    result = manage(production_environment(tmp_path), "shell", "--no-imports", "-c", script)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "whitenoise.storage.CompressedStaticFilesStorage False True"
