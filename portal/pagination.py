"""Pagination whose cost does not grow with the hospital: totals exact when small, estimated when large.

An exact ``COUNT(*)`` reads every row a list could show; for a hospital with years of studies that is the
most expensive part of showing 50 of them. Here the count stops at ``EXACT_COUNT_LIMIT`` rows; beyond that
the total is PostgreSQL's planner estimate for the same query (other databases count exactly), and the
page says "about". Pages are found by their rows, not by the estimate, so every page stays reachable.
"""

import json
from functools import cached_property

from django.core.paginator import InvalidPage, Page, PageNotAnInteger, Paginator
from django.db import connections

from portal.api import BoundedLimitOffsetPagination

#: Lists with up to this many rows are counted exactly.
EXACT_COUNT_LIMIT = 1000


def planner_estimate(queryset):
    """PostgreSQL's estimate of the rows ``queryset`` returns (from EXPLAIN, without running it)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def estimated_count(queryset, *, exact_up_to=None):
    """(count, is_estimate): exact up to ``exact_up_to`` rows (default ``EXACT_COUNT_LIMIT``); beyond that the
    planner's estimate on PostgreSQL."""
    if exact_up_to is None:
        exact_up_to = EXACT_COUNT_LIMIT
    capped = queryset.order_by()[: exact_up_to + 1].count()
    if capped <= exact_up_to or connections[queryset.db].vendor != "postgresql":
        return (capped if capped <= exact_up_to else queryset.count()), False
    return max(exact_up_to + 1, planner_estimate(queryset)), True


class EstimatedCountPage(Page):
    def has_next(self):
        return self.has_more_rows


class EstimatedCountPaginator(Paginator):
    """A Django paginator with ``count_is_estimate``; a page knows whether more follow from its own rows."""

    @cached_property
    def _count_and_estimate(self):
        return estimated_count(self.object_list)

    @property
    def count(self):
        return self._count_and_estimate[0]

    @property
    def count_is_estimate(self):
        return self._count_and_estimate[1]

    def validate_number(self, number):
        if not self.count_is_estimate:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise InvalidPage(self.error_messages["min_page"])
        return number

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        page = EstimatedCountPage(rows[: self.per_page], number, self)
        page.has_more_rows = len(rows) > self.per_page
        return page


class EstimatedCountPagination(BoundedLimitOffsetPagination):
    """The REST lists' limit/offset pagination (limit capped, see ``BoundedLimitOffsetPagination``) with
    ``count`` estimated beyond ``EXACT_COUNT_LIMIT`` rows (``count_is_estimate`` says which)."""

    def get_count(self, queryset):
        self.count_is_estimate = False
        if not hasattr(queryset, "query"):
            return len(queryset)
        count, self.count_is_estimate = estimated_count(queryset)
        return count

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_is_estimate"] = self.count_is_estimate
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_is_estimate"] = {
            "type": "boolean", "description": "True when count is the database's estimate (large lists).",
        }
        return schema
