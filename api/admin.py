"""Tokens are created and revoked in the admin; the key is shown once, on creation."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from api.models import ApiToken, TransactionalTemplate
from api.tokens import token_fill_new


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiToken.Scope.choices,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ("user", "name", "scopes", "expires_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "user", "prefix", "scope_list", "created_at", "last_used_at",
                    "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a token's owner and scopes are fixed; make a new one instead
            return (*self.readonly_fields, "user", "scopes")
        return self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and not request.user.is_superuser and "user" in form.base_fields:
            # A token acts with its owner's permissions: anyone but a superuser makes
            # tokens for themselves only (one for a superuser would be an escalation).
            field = form.base_fields["user"]
            field.queryset = field.queryset.filter(pk=request.user.pk)
            field.initial = request.user.pk
        return form

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if not change:
            key = token_fill_new(obj)
            obj.scopes = sorted(set(form.cleaned_data["scopes"]))
            super().save_model(request, obj, form, change)
            self.message_user(request, _(
                "The token's key, shown this once (only its hash is kept): %(key)s")
                % {"key": key}, messages.WARNING)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Revoke the selected tokens (at once, for good)"),
                  permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, _("%(n)d token(s) revoked.") % {"n": count})


@admin.register(TransactionalTemplate)
class TransactionalTemplateAdmin(admin.ModelAdmin):
    list_display = ("slug", "subject", "updated_at")
    search_fields = ("slug", "subject")
