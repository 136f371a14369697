"""Campaigns: list, draft, preview, test send, schedule, pause/resume/cancel, report.

Every verb is the service the admin's campaign page calls (newsletter.campaigns),
with the admin's permissions: ``change_campaign`` to edit and test,
``schedule_campaign`` to schedule, unschedule, pause, resume and cancel.
"""

from __future__ import annotations

from dataclasses import asdict

from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api import audit
from api.models import ApiToken
from api.problems import Unprocessable
from api.views.base import ID_PATTERN
from newsletter.campaign_report import campaign_report
from newsletter.campaigns import (
    CampaignError,
    campaign_cancel,
    campaign_errors,
    campaign_pause,
    campaign_preview,
    campaign_resume,
    campaign_save,
    campaign_schedule,
    campaign_sync,
    campaign_test_send,
    campaign_unschedule,
)
from newsletter.models import Campaign, MailingList

_CONTENT = ("name", "subject", "preheader", "from_name", "from_email", "reply_to", "layout",
            "body_format", "body", "text_body", "segment_attributes", "subscribed_after",
            "subscribed_before", "tags", "pool")


def _address(value: str) -> None:
    validate_email(value)  # a function, not EmailValidator: the schema must allow ""


def _optional_address() -> serializers.CharField:
    # Empty means "the first list's"; an EmailField would document every value as an email.
    return serializers.CharField(max_length=254, required=False, allow_blank=True,
                                 validators=[_address],
                                 help_text="An address, or empty for the first list's.")


class CampaignSerializer(serializers.ModelSerializer):
    from_email = _optional_address()
    reply_to = _optional_address()
    lists = serializers.SlugRelatedField(slug_field="slug", many=True, required=False,
                                         queryset=MailingList.objects.all())
    exclude_lists = serializers.SlugRelatedField(slug_field="slug", many=True, required=False,
                                                 queryset=MailingList.objects.all())

    class Meta:
        model = Campaign
        fields = ("id", *_CONTENT, "lists", "exclude_lists", "state", "scheduled_at",
                  "started_at", "last_error", "created_at", "updated_at")
        read_only_fields = ("id", "state", "scheduled_at", "started_at", "last_error",
                            "created_at", "updated_at")


class PreviewSerializer(serializers.Serializer):
    subject = serializers.CharField()
    preheader = serializers.CharField()
    from_header = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()


class TestSendSerializer(serializers.Serializer):
    addresses = serializers.ListField(child=serializers.CharField(max_length=320),
                                      min_length=1, max_length=50)
    preview_as = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                          max_value=2**63 - 1,
                                          help_text="A subscription id to personalise with.")


class ScheduleSerializer(serializers.Serializer):
    when = serializers.DateTimeField(required=False, allow_null=True,
                                     help_text="ISO 8601 with an offset; omit with now=true.")
    now = serializers.BooleanField(required=False, default=False)
    timezone = serializers.CharField(required=False, default="UTC", max_length=64,
                                     help_text="The zone to show the time in.")

    def validate(self, attrs):
        if not attrs.get("now") and not attrs.get("when"):
            raise serializers.ValidationError("Give when, or now=true.")
        return attrs


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=400, default="")


class ReportSerializer(serializers.Serializer):
    audience = serializers.IntegerField()
    started = serializers.BooleanField()
    percent_done = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Not tried yet (sending.delivery_progress).")
    deferred = serializers.IntegerField(help_text="Tried, a temporary failure: retried.")
    states = serializers.DictField(child=serializers.IntegerField())
    bounces = serializers.DictField(child=serializers.IntegerField())
    complaints = serializers.IntegerField()
    unsubscribes = serializers.IntegerField()
    pause_reason = serializers.CharField()
    providers = serializers.ListField(child=serializers.DictField())
    paused = serializers.ListField(child=serializers.DictField(), allow_null=True,
                                   help_text="Providers holding this mail back (null: unknown).")


def _refused(func):
    try:
        return func()
    except CampaignError as exc:
        raise Unprocessable(str(exc)) from exc


def _write(campaign: Campaign, values: dict, user) -> Campaign:
    lists = values.pop("lists", None)
    exclude = values.pop("exclude_lists", None)
    for name, value in values.items():
        setattr(campaign, name, value)
    problems = {name: [message] for name, message in campaign_errors(campaign).items()
                if message.startswith("Personalisation")}  # drafts may be unfinished
    if problems:
        raise serializers.ValidationError(problems)
    with transaction.atomic():
        _refused(lambda: campaign_save(campaign, user=user))
        if lists is not None:
            campaign.lists.set(lists)
        if exclude is not None:
            campaign.exclude_lists.set(exclude)
    return campaign


class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    serializer_class = CampaignSerializer
    permission_model = Campaign
    write_scope = ApiToken.Scope.CAMPAIGNS
    lookup_value_regex = ID_PATTERN
    permission_actions: dict = {}

    def get_queryset(self):
        return Campaign.objects.prefetch_related("lists", "exclude_lists")

    def get_object(self):
        return campaign_sync(super().get_object())

    def create(self, request, *args, **kwargs):
        """A new draft (nothing is sent until it is scheduled)."""
        data = CampaignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = _write(Campaign(), dict(data.validated_data), request.user)
        audit.log_write(request, campaign, audit.ADDED, "draft created")
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        """Edit a draft or scheduled campaign (refused once it has started)."""
        campaign = self.get_object()
        data = CampaignSerializer(campaign, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        campaign = _write(campaign, dict(data.validated_data), request.user)
        audit.log_write(request, campaign, audit.CHANGED,
                        f"changed {', '.join(sorted(data.validated_data))}")
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(responses=PreviewSerializer, parameters=[OpenApiParameter(
        "subscription", int, description="Personalise as this subscription.")])
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """The mail as a subscriber would get it (a sample reader without ``subscription``)."""
        campaign = self.get_object()
        raw = request.query_params.get("subscription", "")
        subscription = int(raw) if raw.isdigit() and len(raw) <= 18 else None
        return Response(asdict(campaign_preview(campaign, subscription)))

    @extend_schema(request=TestSendSerializer, responses={202: None})
    @action(detail=True, methods=["post"], permission_actions={"POST": ["change"]})
    def test(self, request, pk=None):
        """Mail it, marked [TEST], to a few addresses through the transactional pool."""
        campaign = self.get_object()
        data = TestSendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = _refused(lambda: campaign_test_send(
            campaign, data.validated_data["addresses"], data.validated_data.get("preview_as")))
        audit.log_write(request, campaign, audit.CHANGED, f"[test] sent to {count}")
        return Response({"sent": count}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ScheduleSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_actions={"POST": ["schedule"]})
    def schedule(self, request, pk=None):
        """Schedule (the admin's checklist must pass); ``now: true`` starts at the next run."""
        campaign = self.get_object()
        data = ScheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        when = timezone.now() if values.get("now") else values["when"]
        campaign = _refused(lambda: campaign_schedule(campaign, when, values["timezone"]))
        audit.log_write(request, campaign, audit.CHANGED,
                        f"[schedule] for {campaign.scheduled_at.isoformat()}")
        return Response(CampaignSerializer(campaign).data)

    def _verb(self, request, verb: str, func):
        campaign = self.get_object()
        campaign = _refused(lambda: func(campaign))
        audit.log_write(request, campaign, audit.CHANGED, f"[{verb}]")
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_actions={"POST": ["schedule"]})
    def unschedule(self, request, pk=None):
        """Back to draft."""
        return self._verb(request, "unschedule", campaign_unschedule)

    @extend_schema(request=PauseSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_actions={"POST": ["schedule"]})
    def pause(self, request, pk=None):
        """No further messages until resumed."""
        data = PauseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data["reason"] or (
            f"paused through the API by {request.user.get_username()}")
        return self._verb(request, "pause", lambda c: campaign_pause(c, reason=reason))

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_actions={"POST": ["schedule"]})
    def resume(self, request, pk=None):
        return self._verb(request, "resume", campaign_resume)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], permission_actions={"POST": ["schedule"]})
    def cancel(self, request, pk=None):
        """Draft or scheduled: nothing is sent. Sending or paused: the rest is not sent."""
        return self._verb(request, "cancel", campaign_cancel)

    @extend_schema(responses=ReportSerializer)
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """Sent, waiting, bounces by kind, complaints and unsubscribes, per provider."""
        report = campaign_report(self.get_object())
        body = asdict(report)
        body["percent_done"] = report.percent_done
        body["waiting"], body["deferred"] = report.waiting, report.deferred
        body["providers"] = [{**asdict(row), "total": row.total, "name": row.name,
                              "waiting": row.waiting, "deferred": row.deferred}
                             for row in report.providers]
        body["paused"] = None if report.paused is None else [
            {**asdict(p), "name": p.name} for p in report.paused]
        return Response(body)
