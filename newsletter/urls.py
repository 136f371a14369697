"""Public pages: signup, confirmation, unsubscribe, preferences."""

from django.urls import path
from django.views.generic import RedirectView

from newsletter import archive, media_views, testsend_views, views

app_name = "newsletter"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("s/<slug:slug>/", views.signup, name="signup"),
    path("s/<slug:slug>/subscribe/", views.signup_embedded, name="signup-embedded"),
    path("s/<slug:slug>/check-inbox/", views.check_inbox, name="check-inbox"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/one-click/", views.one_click, name="one-click"),
    path("p/<str:token>/", views.preferences, name="preferences"),
    path("p/<str:token>/privacy/", views.privacy_request, name="privacy-request"),
    # Reached only through the fresh link privacy_request mails (tokens.privacy_token).
    path("me/export/<str:token>/", views.privacy_export, name="privacy-export"),
    path("me/erase/<str:token>/", views.privacy_erase, name="privacy-erase"),
    # Where a test send's links lead (newsletter.testsend): pages that change nothing.
    path("t/c/<str:token>/", testsend_views.test_click, name="test-click"),
    path("t/o/<str:token>/", testsend_views.test_open, name="test-open"),
    path("t/<str:token>/", testsend_views.test_link, name="test-link"),
    # Library images as mail clients load them (newsletter.media_views).
    path("media/<str:name>", media_views.media_file, name="media"),
    # The public archive (newsletter.archive); tracking is in newsletter.tracking_urls.
    *archive.urlpatterns,
]
