"""/api/v1/: the routes, the OpenAPI schema and its docs page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from api.problems import not_found_view
from api.views.campaigns import CampaignViewSet
from api.views.imports import ImportViewSet
from api.views.lists import MailingListViewSet
from api.views.subscribers import SubscriberViewSet
from api.views.subscriptions import SubscriptionViewSet
from api.views.suppressions import SuppressionViewSet
from api.views.tx import TxViewSet

router = SimpleRouter()
router.register("lists", MailingListViewSet, basename="list")
router.register("subscribers", SubscriberViewSet, basename="subscriber")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("tx", TxViewSet, basename="tx")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("imports", ImportViewSet, basename="import")


class _PublicSchema(SpectacularAPIView):
    """The schema describes code that is public anyway; no token needed to read it."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


class _PublicDocs(SpectacularSwaggerView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


app_name = "api"

urlpatterns = [
    path("schema/", _PublicSchema.as_view(), name="schema"),
    path("docs/", _PublicDocs.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
    re_path(r"^[\s\S]*$", not_found_view),  # any rest, line breaks included
]
