"""The admin site: django-otp's TOTP login, required for whoever has a device.

Two-factor is optional per person unless ``ADMIN_REQUIRE_2FA`` is set: an admin
with a confirmed TOTP device must give its code at login, and a session that
was not verified by one (logged in some other way) is not let into the admin.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext_lazy as _
from django_otp import user_has_device
from django_otp.admin import OTPAdminAuthenticationForm


def two_factor_required(user) -> bool:
    return settings.ADMIN_REQUIRE_2FA or user_has_device(user, confirmed=True)


class LoginForm(OTPAdminAuthenticationForm):
    otp_token = forms.CharField(required=False, label=_("Two-factor code (if you set one up)"),
                                widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                              "inputmode": "numeric"}))

    def clean(self):
        self.cleaned_data = AdminAuthenticationForm.clean(self)  # the password
        user = self.get_user()
        if user is not None and two_factor_required(user):
            self.clean_otp(user)  # django-otp: the token, or a clear error
        return self.cleaned_data


class AdminSite(admin.AdminSite):
    login_form = LoginForm
    login_template = "otp/admin111/login.html"  # django-otp's: adds the token field

    def index(self, request, extra_context=None):
        """The home page: the stock app list under the dashboard's figures (config.dashboard)."""
        from config.dashboard import dashboard_for

        extra = {"dashboard": dashboard_for(request.user), **(extra_context or {})}
        return super().index(request, extra_context=extra)

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        verified = getattr(request.user, "is_verified", lambda: False)()
        return verified or not two_factor_required(request.user)
