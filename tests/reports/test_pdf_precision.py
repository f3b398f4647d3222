"""The PDF's method section names the numeric precision the analysis ran in (issue 18)."""

import pytest

from tests.reports.test_pdf import pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysis(analysis):
    analysis.precision = "bfloat16"
    analysis.save(update_fields=["precision"])
    return analysis


def test_the_method_section_names_the_reduced_precision_and_that_it_was_checked(signed):
    text, _ = pdf_text(signed)
    method = " ".join(text.split("Method", 1)[1].split())
    assert "numeric precision bfloat16 (reduced precision, checked against float32 before use)" in method
