from __future__ import annotations

from rest_framework import viewsets

from api.serializers import MailingListSerializer
from api.views.base import ID_PATTERN
from newsletter.models import MailingList


class MailingListViewSet(viewsets.ReadOnlyModelViewSet):
    """Mailing lists (read only: lists are set up in the admin)."""

    queryset = MailingList.objects.all()
    serializer_class = MailingListSerializer
    permission_model = MailingList
    lookup_value_regex = ID_PATTERN
