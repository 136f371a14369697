"""Subscriptions: signup through the API is the signup form's service, double opt-in
included; the consent record says source ``api`` with what the caller states."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api import audit
from api.models import ApiToken
from api.selectors import list_by_slug
from api.serializers import (
    SignupResultSerializer,
    SignupSerializer,
    SubscriptionSerializer,
    UnsubscribeResultSerializer,
    UnsubscribeSerializer,
)
from api.views.base import ID_PATTERN, api_client, service_errors
from newsletter.models import ConsentText, Subscription
from newsletter.services.signup import SignupOutcome, subscription_request
from newsletter.services.subscriptions import subscription_unsubscribe
from newsletter.validation import address_clean


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    serializer_class = SubscriptionSerializer
    permission_model = Subscription
    write_scope = ApiToken.Scope.SUBSCRIBERS
    lookup_value_regex = ID_PATTERN
    permission_actions: dict = {}

    def get_queryset(self):
        rows = Subscription.objects.select_related("subscriber", "mailing_list")
        params = self.request.query_params if self.action == "list" else {}
        if params.get("list"):
            rows = rows.filter(mailing_list__slug=params["list"][:64])
        if params.get("email"):
            rows = rows.filter(subscriber__email__iexact=params["email"].strip()[:320])
        if params.get("status"):
            rows = rows.filter(status=params["status"][:16])
        return rows

    @extend_schema(parameters=[
        OpenApiParameter("list", str, description="List slug."),
        OpenApiParameter("email", str, description="Exact address (case-insensitive)."),
        OpenApiParameter("status", str, enum=Subscription.Status.values),
    ])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=SignupSerializer, responses={
        201: SignupResultSerializer, 200: SignupResultSerializer, 202: SignupResultSerializer})
    def create(self, request, *args, **kwargs):
        """Sign someone up through the signup form's own service: with double opt-in the
        subscription is pending and the confirmation mail goes out; without, confirmed.

        As with the form, the request only checks (limits per stated IP and list,
        address) and queues; a worker stores it and mails (202, outcome ``queued``:
        see ``GET /api/v1/subscriptions/?email=``). Where signups are stored in the
        request (SIGNUP_ASYNC off), the answer is the outcome and the subscription.
        """
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        mailing_list = list_by_slug(values["list"])
        if mailing_list is None:
            raise exceptions.ValidationError({"list": ["No list with this slug."]})
        consent_text_id = None
        if values["consent_text_version"] is not None:
            consent_text_id = ConsentText.objects.filter(
                mailing_list=mailing_list, version=values["consent_text_version"]
            ).values_list("id", flat=True).first()
            if consent_text_id is None:
                raise exceptions.ValidationError(
                    {"consent_text_version": ["This list has no such consent text version."]})
        outcome = service_errors(lambda: subscription_request(
            mailing_list=mailing_list, email=values["email"], name=values["name"],
            consent_text_id=consent_text_id, client=api_client(values)))
        subscription = None
        if outcome not in (SignupOutcome.QUEUED, SignupOutcome.SUPPRESSED):
            subscription = self.get_queryset().filter(
                mailing_list=mailing_list, subscriber__email=address_clean(values["email"])
            ).first()
        if subscription is not None and outcome in _STORED:
            audit.log_write(request, subscription, audit.ADDED, f"signup: {outcome}")
        elif outcome == SignupOutcome.QUEUED:
            audit.log_write(request, mailing_list, audit.CHANGED,
                            "signup queued for a subscriber (source api)")
        body = {"outcome": str(outcome),
                "subscription": SubscriptionSerializer(subscription).data if subscription
                else None}
        code = (status.HTTP_202_ACCEPTED if outcome == SignupOutcome.QUEUED
                else status.HTTP_201_CREATED if outcome in _STORED else status.HTTP_200_OK)
        return Response(body, status=code)

    @extend_schema(request=UnsubscribeSerializer, responses=UnsubscribeResultSerializer)
    @action(detail=True, methods=["post"], permission_actions={"POST": ["change"]})
    def unsubscribe(self, request, pk=None):
        """Unsubscribe now (recorded in the consent log with source api)."""
        subscription = self.get_object()
        data = UnsubscribeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        done = subscription_unsubscribe(subscription_id=subscription.id,
                                        client=api_client(data.validated_data),
                                        detail=data.validated_data["detail"])
        if done:
            audit.log_write(request, subscription, audit.CHANGED, "unsubscribed")
        subscription.refresh_from_db()
        return Response({"unsubscribed": done,
                         "subscription": SubscriptionSerializer(subscription).data})


_STORED = (SignupOutcome.REQUESTED, SignupOutcome.CONFIRMED, SignupOutcome.MAIL_LIMITED)
