"""Hospital admins see which models analyse which kind of series, and their champion versions."""

from django.urls import reverse


def test_admin_sees_each_catalogue_entry_with_its_champions(client, north, settings, tiny_model_store):
    settings.MLFLOW_TRACKING_URI = tiny_model_store
    client.force_login(north.admin)
    response = client.get(reverse("hospital-models"))
    assert response.status_code == 200
    html = response.content.decode()
    assert [active.entry.key for active in response.context["entries"]] == ["lung-ct", "brain-mr-flair"]
    assert "Lung CT" in html and "Brain MRI (FLAIR)" in html and "sequence FLAIR" in html
    assert "radassist-brain-segmenter version 1" in html and "demo, not for clinical use" in html
    assert reverse("hospital-models") in client.get(reverse("hospital-dashboard")).content.decode()


def test_without_a_registry_nothing_is_installed_and_no_store_is_made(client, north, settings, tmp_path):
    store = tmp_path / "mlflow.db"
    settings.MLFLOW_TRACKING_URI = f"sqlite:///{store}"
    client.force_login(north.admin)
    html = client.get(reverse("hospital-models")).content.decode()
    assert html.count("not installed") == 4
    assert not store.exists()


def test_doctors_do_not_get_the_page(client, north):
    client.force_login(north.doctor)
    assert client.get(reverse("hospital-models")).status_code == 404
