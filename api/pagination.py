from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Opaque cursors over the primary key: stable while rows are added (no offsets)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000
