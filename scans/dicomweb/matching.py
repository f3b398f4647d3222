"""DICOM wildcard matching (PS3.4 C.2.2.2.4) as SQL pattern matching, never as a regular expression.

``*`` matches any run of characters and ``?`` one character. A query value becomes a LIKE pattern
on PostgreSQL (``%`` and ``_`` in the value escaped) and a GLOB pattern on SQLite (whose LIKE
ignores case); both match in time bounded by the value and pattern lengths, both are
case-sensitive as the standard asks, and both use a B-tree index for a pattern with a literal
prefix (Django gives indexed CharFields a ``varchar_pattern_ops`` index on PostgreSQL).

A pattern with more than ``MAXIMUM_WILDCARDS`` wildcards, or a value longer than
``MAXIMUM_VALUE_LENGTH``, is refused with a 400 before any query runs, so that no search can keep
the database busy.
"""

import re

from django.db.models import CharField, Lookup, TextField, Value
from django.db.models.functions import Upper

from portal.errors import UserFacingError

MAXIMUM_WILDCARDS = 10
MAXIMUM_VALUE_LENGTH = 400
REPEATED_STARS = re.compile(r"\*{2,}")


class InvalidQuery(UserFacingError):
    status_code = 400


def has_wildcards(value):
    return "*" in value or "?" in value


def checked_value(value, *, keyword):
    """The query value with runs of ``*`` folded to one; InvalidQuery when it is too long or too wild."""
    if len(value) > MAXIMUM_VALUE_LENGTH:
        raise InvalidQuery(f"The {keyword} value is longer than {MAXIMUM_VALUE_LENGTH} characters.")
    value = REPEATED_STARS.sub("*", value)
    wildcards = value.count("*") + value.count("?")
    if wildcards > MAXIMUM_WILDCARDS:
        raise InvalidQuery(
            f"The {keyword} value has {wildcards} wildcards; at most {MAXIMUM_WILDCARDS} are accepted."
        )
    return value


def like_pattern(value):
    """A DICOM wildcard value as a SQL LIKE pattern with backslash as the escape character."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def glob_pattern(value):
    """A DICOM wildcard value as an SQLite GLOB pattern (``*`` and ``?`` mean the same; ``[`` is quoted)."""
    return value.replace("[", "[[]")


class DicomWildcard(Lookup):
    """``field__dicom_wildcard="Doe^J*"``: case-sensitive DICOM wildcard match."""

    lookup_name = "dicom_wildcard"
    prepare_rhs = False

    def pattern_sql(self, compiler, connection):
        return "%s"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} LIKE {self.pattern_sql(compiler, connection)} ESCAPE '\\'", [*lhs_params, like_pattern(self.rhs)]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} GLOB {self.pattern_sql(compiler, connection)}", [*lhs_params, glob_pattern(self.rhs)]


class UpperDicomWildcard(DicomWildcard):
    """``search_field__upper_dicom_wildcard="doe^j*"``: the pattern upper-cased by the database, for a column it
    keeps upper-cased (so both sides use the same UPPER, whatever it does beyond ASCII)."""

    lookup_name = "upper_dicom_wildcard"

    def pattern_sql(self, compiler, connection):
        return "UPPER(%s)"


for field_class in (CharField, TextField):
    field_class.register_lookup(DicomWildcard)
    field_class.register_lookup(UpperDicomWildcard)


def text_match(field, value, *, keyword):
    """Q arguments for a single-value match: exact, or wildcard when the value has ``*`` or ``?``."""
    value = checked_value(value, keyword=keyword)
    if has_wildcards(value):
        return {f"{field}__dicom_wildcard": value}
    return {field: value}


def upper_match(field, value, *, keyword):
    """Q arguments matching an upper-cased column case-insensitively."""
    value = checked_value(value, keyword=keyword)
    if has_wildcards(value):
        return {f"{field}__upper_dicom_wildcard": value}
    return {field: Upper(Value(value, output_field=CharField()))}
