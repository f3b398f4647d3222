"""``manage.py check`` names a mistyped RADASSIST_INFERENCE_PRECISION."""

from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_check_reports_a_mistyped_precision_setting(monkeypatch):
    monkeypatch.setenv("RADASSIST_INFERENCE_PRECISION", "bf16")
    try:
        call_command("check")
    except SystemCheckError as error:
        assert "ml.E001" in str(error) and "must be one of float32, bfloat16, float16, auto" in str(error)
    else:
        raise AssertionError("the check did not report the setting")


def test_check_accepts_every_precision_mode(monkeypatch):
    for value in ("float32", "bfloat16", "float16", "auto"):
        monkeypatch.setenv("RADASSIST_INFERENCE_PRECISION", value)
        call_command("check")
