from django.contrib import admin
from django.urls import include, path

from config.health import healthz, healthz_detail
from deliverability import breaker_views, tools_views
from sending import report_views, sink_views
from sending.metrics import metrics_view

admin.site.site_header = "Newsletter service"
admin.site.site_title = "Newsletter service"
admin.site.index_title = "Administration"

urlpatterns = [
    path("", include("newsletter.tracking_urls")),  # first: resolved on every click
    path("healthz", healthz, name="healthz"),
    path("healthz/detail", healthz_detail, name="healthz-detail"),
    path("metrics", metrics_view, name="metrics"),
    # Every admin page: admin_view (login, staff, CSRF) here, its permission in the view.
    path("admin/sink/", admin.site.admin_view(sink_views.sink_list), name="sink-list"),
    path("admin/sink/<str:key>/", admin.site.admin_view(sink_views.sink_detail),
         name="sink-detail"),
    path("admin/breakers/", admin.site.admin_view(breaker_views.breaker_list), name="breaker-list"),
    path("admin/breakers/action/", admin.site.admin_view(breaker_views.breaker_action),
         name="breaker-action"),
    path("admin/reputation/checks/", admin.site.admin_view(tools_views.preflight_view),
         name="preflight"),
    path("admin/reputation/headers/", admin.site.admin_view(tools_views.explain_headers_view),
         name="explain-headers"),
    path("admin/report/", admin.site.admin_view(report_views.report_view), name="daily-report"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),  # issue 17: the HTTP API
    path("hooks/", include("deliverability.esp.urls")),  # issue 17: ESP event webhooks
    path("", include("newsletter.urls")),
]
