"""Every URL pattern, API route and admin page, tried as each role of another hospital.

The sweep walks the URL resolver, so a page added later is covered without
editing this file. Each app plants its rows in the victim hospital through
``tests/tenancy_data.py``; the sweep fills every URL parameter with the
victim's primary keys and identifiers, requests the page as every role of the
attacking hospital (and anonymously, and with the attacker's API key), and
asserts that
- no response is a server error,
- no response carries any of the victim's marker strings (names, MRNs, UIDs...),
- nothing of the victim hospital (rows and many-to-many links) changed after POST, PUT, PATCH and
  DELETE, sent both empty and with a valid payload built from the victim's own objects (the ids of
  its patient, study, series, report..., plus the text fields a form would want).
"""
import itertools
import json
import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import build_world
from tests.tenancy_data import VICTIM_DATA_BUILDERS

#: Parameters given as primary keys, whatever the view calls them.
PRIMARY_KEY_PARAMETER = re.compile(r"^(pk|id|object_id)$|_(pk|id)$")
#: Pages whose parameters never name a tenant's row.
NOT_TENANT_DATA = ("admin:view_on_site", "admin:app_list", "admin:autocomplete", "admin:jsi18n")
#: Fields that may legitimately change while the victim is left alone (timestamps of use).
VOLATILE_FIELDS = {"last_login", "last_used_at", "updated_at"}


def walk_patterns(patterns, namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            child = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk_patterns(entry.url_patterns, child)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", sorted(entry.pattern.regex.groupindex)


def url_names_with_parameters():
    seen = {}
    for name, parameters in walk_patterns(get_resolver().url_patterns):
        seen.setdefault((name, tuple(parameters)), None)
    return [(name, list(parameters)) for name, parameters in seen if name not in NOT_TENANT_DATA]


def candidate_values(parameter, planted_objects, url_values, url_name):
    if parameter in url_values:
        return url_values[parameter]
    if parameter == "format":
        return ["json"]
    if PRIMARY_KEY_PARAMETER.search(parameter):
        model_objects = planted_objects
        admin_model = re.match(r"admin:(\w+?)_(\w+)_(change|delete|history)$", url_name)
        if admin_model:
            model_objects = [
                obj for obj in planted_objects
                if (obj._meta.app_label, obj._meta.model_name) == admin_model.group(1, 2)
            ]
        return sorted({str(obj.pk) for obj in model_objects})
    return [str(obj.pk) for obj in planted_objects[:3]]


def concrete_urls(planted_objects, url_values):
    for name, parameters in url_names_with_parameters():
        if not parameters:
            yield reverse(name)
            continue
        choices = [candidate_values(p, planted_objects, url_values, name) for p in parameters]
        for combination in itertools.islice(itertools.product(*choices), 40):
            try:
                yield reverse(name, kwargs=dict(zip(parameters, combination, strict=True)))
            except Exception:  # noqa: BLE001 - a value the pattern's converter does not accept is simply not tried
                continue


def snapshot_of(hospital):
    """Every row of every tenant model that belongs to the victim hospital, for before/after comparison."""
    rows = {}
    for model in apps.get_models():
        queryset = model._default_manager.all()
        if not hasattr(queryset, "for_hospital"):
            continue
        values = list(queryset.for_hospital(hospital).order_by("pk").values())
        rows[model._meta.label] = [
            {key: value for key, value in row.items() if key not in VOLATILE_FIELDS} for row in values
        ]
        for field in model._meta.many_to_many:
            rows[f"{model._meta.label}.{field.name}"] = [
                (obj.pk, sorted(getattr(obj, field.name).values_list("pk", flat=True)))
                for obj in queryset.for_hospital(hospital).order_by("pk")
            ]
    return rows


def valid_payload(planted_objects):
    """A form/JSON body naming the victim's own rows under their model names, with plausible text fields."""
    payload = {
        "impression": "Written by another hospital", "recommendation": "none", "conclusion": "normal",
        "reason": "attack", "override_reason": "attack", "email": "intruder@attacker.test", "role": "doctor",
        "full_name": "Intruder", "next": "/", "window": "lung", "password": "not-the-password",
    }
    for obj in planted_objects:
        payload.setdefault(obj._meta.model_name, str(obj.pk))
        payload.setdefault(f"{obj._meta.model_name}_id", str(obj.pk))
    return payload


@pytest.fixture
def victim(db):
    world = build_world("victim", "Victima Memorial Hospital")
    objects, markers, url_values = [], [], {}
    for builder in VICTIM_DATA_BUILDERS:
        planted = builder(world)
        objects += planted.objects
        markers += planted.markers
        for parameter, values in planted.url_values.items():
            url_values.setdefault(parameter, []).extend(values)
    assert all(len(marker) >= 8 for marker in markers), "markers must be distinctive"
    return world, objects, markers, url_values


def attacker_clients(attacker):
    clients = {"anonymous": Client()}
    for role in ("admin", "doctor", "patient_user"):
        client = Client()
        client.force_login(getattr(attacker, role))
        clients[role] = (client, getattr(attacker, role))
    clients["api_key"] = Client(HTTP_AUTHORIZATION=f"Bearer {attacker.api_secret}")
    return clients


def request(client, method, url, payload):
    if method == "get":
        return client.get(url)
    if method == "post":
        return client.post(url, payload)
    return getattr(client, method)(url, data=json.dumps(payload), content_type="application/json")


@pytest.mark.django_db(transaction=False)
def test_no_page_shows_or_changes_another_hospitals_data(victim, north):
    world, planted_objects, markers, url_values = victim
    before = snapshot_of(world.hospital)
    payload = valid_payload(planted_objects)
    # An empty form and a valid one for POST; the valid body for PUT and PATCH (an empty JSON body tries
    # nothing the valid one does not); DELETE has no body.
    requests_to_try = [("get", {}), ("post", {}), ("post", payload), ("put", payload), ("patch", payload),
                       ("delete", {})]
    urls = sorted(set(concrete_urls(planted_objects, url_values)))
    assert len(urls) > 20, "the sweep should find the portal's pages"
    leaks, errors = [], []
    for role, entry in attacker_clients(north).items():
        client, user = entry if isinstance(entry, tuple) else (entry, None)
        for url in urls:
            if "logout" in url:
                continue
            for method, payload in requests_to_try:
                if user is not None:
                    client.force_login(user)
                response = request(client, method, url, payload)
                if response.status_code >= 500:
                    errors.append(f"{role} {method.upper()} {url} -> {response.status_code}")
                    continue
                if getattr(response, "streaming", False):
                    body = b"".join(response.streaming_content).decode(errors="replace")
                else:
                    body = response.content.decode(errors="replace")
                leaked = [marker for marker in markers if marker in body and marker not in url]
                if leaked:
                    leaks.append(f"{role} {method.upper()} {url} shows {leaked}")
    assert not errors, "server errors:\n" + "\n".join(errors)
    assert not leaks, "foreign data shown:\n" + "\n".join(leaks)
    assert snapshot_of(world.hospital) == before, "a request of another hospital changed the victim's data"


def test_a_hospital_admin_opens_the_admin_page_of_every_own_row(victim, client):
    """The other side of the wall: the same rows are readable by their own hospital's admin."""
    from django.contrib import admin

    world, planted_objects, _markers, _url_values = victim
    client.force_login(world.admin)
    opened = 0
    for obj in planted_objects:
        if type(obj) not in admin.site._registry:
            continue
        response = client.get(reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]))
        assert response.status_code == 200, f"{obj._meta.label} {obj.pk}: {response.status_code}"
        opened += 1
    assert opened >= 5
