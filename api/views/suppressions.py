"""The suppression list: read, add (with a reason), remove."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.response import Response

from api import audit
from api.models import ApiToken
from api.serializers import SuppressionSerializer
from api.views.base import ID_PATTERN
from deliverability.models import Suppression
from deliverability.suppression import normalise, suppress
from newsletter.exceptions import InvalidAddress
from newsletter.validation import address_clean


class SuppressionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = SuppressionSerializer
    permission_model = Suppression
    write_scope = ApiToken.Scope.SUBSCRIBERS
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        rows = Suppression.objects.all()
        params = self.request.query_params if self.action == "list" else {}
        if params.get("address"):
            rows = rows.filter(address=normalise(params["address"][:320]))
        if params.get("reason"):
            rows = rows.filter(reason=params["reason"][:32])
        return rows

    @extend_schema(parameters=[
        OpenApiParameter("address", str, description="Exact address."),
        OpenApiParameter("reason", str, enum=Suppression.Reason.values),
    ])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=SuppressionSerializer, responses={201: SuppressionSerializer,
                                                             200: SuppressionSerializer})
    def create(self, request, *args, **kwargs):
        """Suppress an address. An address already suppressed keeps its first reason (200)."""
        data = SuppressionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            address = address_clean(values["address"])
        except InvalidAddress as exc:
            raise exceptions.ValidationError({"address": [str(exc)]}) from exc
        existed = Suppression.objects.filter(address=normalise(address)).exists()
        entry = suppress(address=address, reason=values.get("reason", "manual"),
                         detail=values.get("detail", ""),
                         source=f"api:{request.user.get_username()}"[:64])
        if not existed:
            audit.log_write(request, entry, audit.ADDED,
                            f"suppressed ({entry.reason}): {entry.detail}")
        return Response(SuppressionSerializer(entry).data,
                        status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("reason", str, required=True,
                                                description="Why it is removed (logged).")],
                   responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Remove an address from the list; the reason is required, as in the admin."""
        entry = self.get_object()
        reason = " ".join(request.query_params.get("reason", "").split())[:400]
        if not reason:
            raise exceptions.ValidationError({"reason": ["Say why the address is removed."]})
        audit.log_write(request, entry, audit.DELETED, f"removed from suppression: {reason}")
        entry.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
