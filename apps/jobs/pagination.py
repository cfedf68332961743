"""``limit`` and ``offset`` of list answers: bounded integers, and a 400 naming the parameter
for anything else (``limit=-5``, ``limit=1e9``, ``offset=x``), never a silent default."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT,
                                     help_text=f"1-{MAX_LIMIT} results per page (default {DEFAULT_LIMIT})")
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0,
                                      help_text=f"0-{MAX_OFFSET}: how many results to skip")


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        return int(_page_query(request)["limit"])

    def get_offset(self, request: Request) -> int:
        return int(_page_query(request)["offset"])

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        fields = PageQuery().fields
        return [
            {"name": "limit", "required": False, "in": "query", "description": fields["limit"].help_text,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
            {"name": "offset", "required": False, "in": "query", "description": fields["offset"].help_text,
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
        ]


def _page_query(request: Request) -> dict[str, Any]:
    page = PageQuery(data={name: request.query_params[name] for name in ("limit", "offset")
                           if name in request.query_params})
    page.is_valid(raise_exception=True)
    return dict(page.validated_data)
