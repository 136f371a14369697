"""Subscribers: the person and their attributes. Lists are joined through /subscriptions/."""

from __future__ import annotations

from django.db.models import Prefetch, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from api import audit
from api.models import ApiToken
from api.serializers import (
    SubscriberCreateSerializer,
    SubscriberSerializer,
    SubscriberUpdateSerializer,
)
from api.services import subscriber_create, subscriber_update
from api.views.base import ID_PATTERN, api_client, service_errors
from newsletter.models import Subscriber, Subscription
from newsletter.services.privacy import subscriber_erase


class SubscriberViewSet(viewsets.ModelViewSet):
    serializer_class = SubscriberSerializer
    permission_model = Subscriber
    write_scope = ApiToken.Scope.SUBSCRIBERS
    lookup_value_regex = ID_PATTERN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        rows = Subscriber.objects.prefetch_related(Prefetch(
            "subscriptions", queryset=Subscription.objects.select_related("mailing_list")))
        params = self.request.query_params if self.action == "list" else {}
        if params.get("email"):
            rows = rows.filter(email__iexact=params["email"].strip())
        if params.get("search"):
            term = params["search"].strip()[:254]
            rows = rows.filter(Q(email__icontains=term) | Q(name__icontains=term))
        if params.get("list"):
            rows = rows.filter(subscriptions__mailing_list__slug=params["list"][:64]).distinct()
        return rows

    @extend_schema(parameters=[
        OpenApiParameter("email", str, description="Exact address (case-insensitive)."),
        OpenApiParameter("search", str, description="Part of the address or name."),
        OpenApiParameter("list", str, description="Only subscribers on this list (slug)."),
    ])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=SubscriberCreateSerializer,
                   responses={201: SubscriberSerializer, 200: SubscriberSerializer})
    def create(self, request, *args, **kwargs):
        """Create a subscriber (on no list yet); an existing address answers 200 with it."""
        data = SubscriberCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscriber, created = service_errors(lambda: subscriber_create(**data.validated_data))
        if created:
            audit.log_write(request, subscriber, audit.ADDED, "subscriber created")
        body = SubscriberSerializer(self.get_queryset().get(pk=subscriber.pk)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=SubscriberUpdateSerializer, responses=SubscriberSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Change the name or attributes."""
        subscriber = self.get_object()
        data = SubscriberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        service_errors(lambda: subscriber_update(
            subscriber=subscriber, name=values.get("name"), attributes=values.get("attributes"),
            merge=values.get("merge_attributes", False)))
        changed = [f for f in ("name", "attributes") if f in values]
        audit.log_write(request, subscriber, audit.CHANGED, f"changed {', '.join(changed)}")
        return Response(SubscriberSerializer(self.get_queryset().get(pk=subscriber.pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Erase the person's data (consent records stay without it; the address stays
        suppressed so no later import re-adds it), as the admin's erase does."""
        subscriber = self.get_object()
        audit.log_write(request, subscriber, audit.DELETED, "subscriber erased",
                        label=f"subscriber {subscriber.pk} (erased)")
        subscriber_erase(subscriber_id=subscriber.id, client=api_client({}))
        return Response(status=status.HTTP_204_NO_CONTENT)
