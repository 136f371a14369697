"""CSV imports: upload to start one, poll its progress.

The import itself is the admin's (``newsletter.imports.subscriber_import_run`` in the
maintenance worker: the same parser, consent modes, report of skipped rows); the
upload is checked as the admin's form checks it.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from api import audit
from api.models import ApiToken
from api.views.base import ID_PATTERN
from newsletter.models import MailingList, SubscriberImport

MAX_UPLOAD = 512 * 1024 * 1024


class ImportSerializer(serializers.ModelSerializer):
    list = serializers.SlugRelatedField(source="mailing_list", slug_field="slug",
                                        read_only=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = SubscriberImport
        fields = ("id", "list", "mode", "consent_statement", "source_name", "state", "percent",
                  "created_by", "created_at", "started_at", "finished_at", "rows_read",
                  "rows_invalid", "rows_duplicate", "rows_suppressed", "subscribers_created",
                  "subscriptions_created", "subscriptions_existing", "error")
        read_only_fields = fields


class ImportStartSerializer(serializers.Serializer):
    list = serializers.SlugRelatedField(slug_field="slug", queryset=MailingList.objects.all())
    mode = serializers.ChoiceField(choices=SubscriberImport.Mode.choices,
                                   default=SubscriberImport.Mode.REQUEST_OPT_IN)
    consent_statement = serializers.CharField(required=False, allow_blank=True, default="",
                                              max_length=4000)
    file = serializers.FileField(help_text="The CSV file (an 'email' column, optional "
                                           "'name' and attribute columns).")

    def validate(self, attrs):
        if (attrs["mode"] == SubscriberImport.Mode.CONFIRMED
                and not attrs["consent_statement"].strip()):
            raise serializers.ValidationError({"consent_statement": [
                "Say how these people agreed, or choose to request their opt-in."]})
        if attrs["file"].size > MAX_UPLOAD:
            raise serializers.ValidationError({"file": ["The file is larger than 512 MiB."]})
        return attrs


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ImportSerializer
    queryset = SubscriberImport.objects.select_related("mailing_list")
    permission_model = SubscriberImport
    write_scope = ApiToken.Scope.SUBSCRIBERS
    lookup_value_regex = ID_PATTERN

    def get_parsers(self):
        if getattr(self, "request", None) is not None and self.request.method == "POST":
            return [MultiPartParser()]
        return super().get_parsers()

    @extend_schema(request={"multipart/form-data": ImportStartSerializer},
                   responses={202: ImportSerializer})
    def create(self, request, *args, **kwargs):
        """Start an import in the background; poll ``GET /api/v1/imports/{id}/``."""
        from newsletter.tasks import subscriber_import_run

        data = ImportStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        with transaction.atomic():
            job = SubscriberImport.objects.create(
                mailing_list=values["list"], mode=values["mode"],
                consent_statement=values["consent_statement"], file=values["file"],
                source_name=(values["file"].name or "")[:255],
                created_by=f"{request.user.get_username()} (API)"[:150])
            audit.log_write(request, job, audit.ADDED, f"import started ({job.mode})")
            subscriber_import_run.delay_on_commit(job.id)
        return Response(ImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)
