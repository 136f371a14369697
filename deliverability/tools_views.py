"""Admin pages: pre-flight reputation checks, and the Received-header analyser."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from deliverability.identity import current_identity
from deliverability.preflight import run_checks
from deliverability.received import explain, summary
from deliverability.resolver import DnsResolver


class HeadersForm(forms.Form):
    headers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "spellcheck": "false"}),
        max_length=200_000,
        help_text="Paste the headers (or the whole message) of a mail you received or were sent.",
    )


@permission_required("project.explain_headers", raise_exception=True)
def explain_headers_view(request):
    form = HeadersForm(request.POST or None)
    result = text = None
    if request.method == "POST" and form.is_valid():
        result = explain(form.cleaned_data["headers"], current_identity())
        text = summary(result)
    context = {**admin.site.each_context(request), "title": "Explain Received headers",
               "form": form, "result": result, "summary": text}
    return render(request, "deliverability/explain_headers.html", context)


@permission_required("project.run_preflight", raise_exception=True)
def preflight_view(request):
    results = None
    if request.method == "POST":
        identity = current_identity()
        results = run_checks(
            DnsResolver(timeout=5), relays=identity.relays, domains=identity.domains,
            from_domains=identity.from_domains, return_path_domain=identity.return_path_domain,
            open_relay=bool(request.POST.get("open_relay")),
        )
    context = {**admin.site.each_context(request), "title": "Pre-flight reputation checks",
               "results": results}
    return render(request, "deliverability/preflight.html", context)
