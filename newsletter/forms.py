"""Forms of the public pages: parse and validate, nothing else."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from newsletter.exceptions import InvalidAddress, InvalidInput
from newsletter.validation import MAX_ADDRESS, MAX_NAME, address_clean, name_clean


class SignupForm(forms.Form):
    email = forms.CharField(
        label=_("E-mail address"), max_length=MAX_ADDRESS,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email",
                                       "autocapitalize": "none", "spellcheck": "false"}))
    name = forms.CharField(
        label=_("Name (optional)"), required=False, max_length=MAX_NAME,
        widget=forms.TextInput(attrs={"autocomplete": "name"}))
    consent = forms.BooleanField(label=_("I agree"), required=True, error_messages={
        "required": _("Please tick the box to agree.")})
    consent_version = forms.IntegerField(widget=forms.HiddenInput, required=False,
                                         min_value=1, max_value=2**31 - 1)
    # The honeypot: hidden from people (CSS and aria-hidden), filled by bots.
    website = forms.CharField(required=False, label=_("Leave this field empty"),
                              widget=forms.TextInput(attrs={"tabindex": "-1",
                                                            "autocomplete": "off"}))

    def clean_email(self) -> str:
        try:
            address_clean(self.cleaned_data["email"])
        except InvalidAddress as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["email"].strip()

    def clean_name(self) -> str:
        try:
            return name_clean(self.cleaned_data["name"])
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from None


class PreferencesForm(forms.Form):
    name = forms.CharField(label=_("Name"), required=False, max_length=MAX_NAME,
                           widget=forms.TextInput(attrs={"autocomplete": "name"}))
    lists = forms.TypedMultipleChoiceField(label=_("Lists"), required=False, coerce=int,
                                           widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, list_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].choices = list_choices

    def clean_name(self) -> str:
        try:
            return name_clean(self.cleaned_data["name"])
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from None
