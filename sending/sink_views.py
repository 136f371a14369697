"""Admin pages that show what the local SMTP sink received (every mail, with its links and
confirmation tokens: ``project.view_sink`` only)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from sending.sink import sink_message, sink_messages


@permission_required("project.view_sink", raise_exception=True)
def sink_list(request):
    page = Paginator(sink_messages(settings.SINK_DIR), 50).get_page(request.GET.get("page"))
    context = {**admin.site.each_context(request), "title": "Sent mail (local sink)", "page": page}
    return render(request, "sending/sink_list.html", context)


@permission_required("project.view_sink", raise_exception=True)
def sink_detail(request, key: str):
    message = sink_message(settings.SINK_DIR, key)
    if message is None:
        raise Http404("No such message in the sink")
    context = {
        **admin.site.each_context(request),
        "title": message.subject or "(no subject)",
        "item": message,
        "headers": list(message.message.items()),
    }
    return render(request, "sending/sink_detail.html", context)
