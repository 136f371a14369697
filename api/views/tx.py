"""Transactional send: one mail to one recipient through the transactional pool.

``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header): the same key
again from the same user answers the first mail and sends nothing; the same
key with a different body is refused (422). The key and the mail are written
in one transaction, so two concurrent requests with one key make one mail
(the loser's row is rolled back before its send is ever queued).
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from api import audit
from api.models import ApiToken, IdempotentSend, TransactionalTemplate
from api.problems import Unprocessable
from api.views.base import ID_PATTERN
from newsletter.exceptions import InvalidAddress
from newsletter.validation import address_clean
from sending.models import TransactionalEmail
from sending.render import TemplateError, render
from sending.transactional import transactional_email_send

PURPOSE = "api"
MAX_KEY = 255


class TxRequestSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=320, help_text="One recipient address.")
    template = serializers.SlugField(max_length=64, required=False,
                                     help_text="A stored template's slug (admin: API > "
                                               "Transactional templates).")
    subject = serializers.CharField(max_length=998, required=False)
    text = serializers.CharField(max_length=1_000_000, required=False, trim_whitespace=False)
    html = serializers.CharField(max_length=2_000_000, required=False, trim_whitespace=False)
    data = serializers.DictField(required=False, default=dict,
                                 help_text="Values for {{ subscriber.<key> }} in the template.")

    def validate(self, attrs):
        if attrs.get("template"):
            if any(attrs.get(f) for f in ("subject", "text", "html")):
                raise serializers.ValidationError("Give a template or subject/text/html, "
                                                  "not both.")
        elif not (attrs.get("subject") and attrs.get("text")):
            raise serializers.ValidationError("Give a template, or subject and text.")
        return attrs


class TxSerializer(serializers.ModelSerializer):
    class Meta:
        model = TransactionalEmail
        fields = ("id", "to", "subject", "state", "message_id", "attempts", "created_at",
                  "sent_at", "last_reply")
        read_only_fields = fields


def _key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"1 to {MAX_KEY} printable ASCII characters."]})
    return key


def _content(values: dict, to: str) -> dict:
    context = {"subscriber": values["data"], "email": to}
    if values.get("template"):
        stored = TransactionalTemplate.objects.filter(slug=values["template"]).first()
        if stored is None:
            raise exceptions.ValidationError({"template": ["No template with this slug."]})
        subject, text, html = stored.subject, stored.body_text, stored.body_html
        from_email = stored.from_email
    else:
        subject, text, html = values["subject"], values["text"], values.get("html", "")
        from_email = ""
    try:
        return {"subject": " ".join(render(subject, context).split()),
                "body_text": render(text, context),
                "body_html": render(html, context, html=True) if html else "",
                "from_email": from_email or settings.DEFAULT_FROM_EMAIL}
    except TemplateError as exc:
        raise exceptions.ValidationError({"template": [str(exc)]}) from exc


class TxViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TxSerializer
    permission_model = TransactionalEmail
    write_scope = ApiToken.Scope.TRANSACTIONAL
    read_scopes = (ApiToken.Scope.READ, ApiToken.Scope.TRANSACTIONAL)
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        # Only mail sent through the API: confirmation mails hold links that act.
        return TransactionalEmail.objects.filter(purpose=PURPOSE)

    @extend_schema(
        request=TxRequestSerializer, responses={202: TxSerializer, 200: TxSerializer},
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER,
            description="Same key again: the first mail's answer, nothing sent twice.")])
    def create(self, request, *args, **kwargs):
        """Queue one mail; answers its id at once, ``GET /api/v1/tx/{id}/`` its state later."""
        key = _key(request)
        data = TxRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            to = address_clean(values["to"])
        except InvalidAddress as exc:
            raise exceptions.ValidationError({"to": [str(exc)]}) from exc
        fingerprint = hashlib.sha256(json.dumps(
            {**values, "to": to}, sort_keys=True, default=str).encode()).hexdigest()
        if key is not None:
            earlier = self._earlier(request, key, fingerprint)
            if earlier is not None:
                return Response(TxSerializer(earlier).data, status=status.HTTP_200_OK)
        content = _content(values, to)
        try:
            with transaction.atomic():
                email = transactional_email_send(to=to, purpose=PURPOSE, **content)
                if key is not None:
                    IdempotentSend.objects.create(user=request.user, key=key,
                                                  request_sha256=fingerprint, email_id=email.id)
        except IntegrityError:  # a concurrent request with the same key won
            earlier = self._earlier(request, key, fingerprint)
            if earlier is None:
                raise
            return Response(TxSerializer(earlier).data, status=status.HTTP_200_OK)
        audit.log_write(request, email, audit.ADDED, f"transactional mail to {to}")
        return Response(TxSerializer(email).data, status=status.HTTP_202_ACCEPTED)

    def _earlier(self, request, key: str, fingerprint: str) -> TransactionalEmail | None:
        found = IdempotentSend.objects.filter(user=request.user, key=key).first()
        if found is None:
            return None
        if found.request_sha256 != fingerprint:
            raise Unprocessable("This Idempotency-Key was used with a different request.")
        email = TransactionalEmail.objects.filter(id=found.email_id).first()
        if email is None:
            raise exceptions.NotFound("The mail of this Idempotency-Key is gone.")
        return email
