"""Request and response shapes (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from rest_framework import serializers

from deliverability.models import Suppression
from newsletter.models import MailingList, Subscriber, Subscription


class MailingListSerializer(serializers.ModelSerializer):
    from_email = serializers.CharField(read_only=True,
                                       help_text="Empty: the service's default sender.")
    class Meta:
        model = MailingList
        fields = ("id", "name", "slug", "description", "double_opt_in", "public",
                  "from_name", "from_email", "created_at")
        read_only_fields = fields


class SubscriptionBriefSerializer(serializers.ModelSerializer):
    list = serializers.SlugRelatedField(source="mailing_list", slug_field="slug", read_only=True)

    class Meta:
        model = Subscription
        fields = ("id", "list", "status", "created_at", "confirmed_at", "unsubscribed_at")
        read_only_fields = fields


class SubscriberSerializer(serializers.ModelSerializer):
    subscriptions = SubscriptionBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Subscriber
        fields = ("id", "email", "name", "attributes", "created_at", "updated_at",
                  "subscriptions")
        read_only_fields = ("id", "created_at", "updated_at", "subscriptions")


class SubscriberCreateSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=320)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    attributes = serializers.DictField(required=False, default=dict)


class SubscriberUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False)
    merge_attributes = serializers.BooleanField(
        required=False, default=False,
        help_text="Add to the stored attributes instead of replacing them; null removes a key.")


class ClientSerializer(serializers.Serializer):
    """What the caller states about the person, for the consent record."""

    ip = serializers.IPAddressField(required=False, allow_null=True, default=None,
                                    help_text="The person's IP address as your site saw it.")
    user_agent = serializers.CharField(max_length=400, required=False, allow_blank=True,
                                       default="")


class SubscriptionSerializer(serializers.ModelSerializer):
    list = serializers.SlugRelatedField(source="mailing_list", slug_field="slug", read_only=True)
    email = serializers.CharField(source="subscriber.email", read_only=True)

    class Meta:
        model = Subscription
        fields = ("id", "list", "email", "subscriber", "status", "created_at", "requested_at",
                  "confirmed_at", "unsubscribed_at")
        read_only_fields = fields


class SignupSerializer(ClientSerializer):
    list = serializers.SlugField(max_length=64, help_text="The list's slug.")
    email = serializers.CharField(max_length=320)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    consent_text_version = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=2**31 - 1,
        help_text="The version of the list's consent text the person saw; default: current.")


class SignupResultSerializer(serializers.Serializer):
    outcome = serializers.CharField(help_text="queued (a worker stores it), requested, "
                                    "confirmed, already_confirmed, mail_limited, "
                                    "address_limited or suppressed")
    subscription = SubscriptionSerializer(allow_null=True)


class UnsubscribeSerializer(ClientSerializer):
    detail = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class UnsubscribeResultSerializer(serializers.Serializer):
    unsubscribed = serializers.BooleanField(help_text="False when it already was.")
    subscription = SubscriptionSerializer()


class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ("id", "address", "reason", "detail", "source", "created_at")
        read_only_fields = ("id", "source", "created_at")
        extra_kwargs = {"address": {"validators": []},
                        "reason": {"default": Suppression.Reason.MANUAL}}
