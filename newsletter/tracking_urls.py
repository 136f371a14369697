"""The click redirect and the open pixel, first in the URL configuration (the hot path:
every pattern before them is tried on each click)."""

from django.urls import path

from newsletter import tracking_views

app_name = "tracking"

urlpatterns = [
    path("c/<path:token>/", tracking_views.click, name="click"),
    path("o/<str:token>/", tracking_views.pixel, name="open"),
]
