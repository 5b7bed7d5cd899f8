"""URLs: the admin for clinicians and operators, the gym API, health, metrics and API docs."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from coaching.api import cds
from coaching.api.views import HealthView, api_not_found, metrics_view
from coaching.cds import SERVICE_ID

# The admin is the only site for people: no "View site" link to a page that does not exist.
admin.site.site_url = None

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"))),
    path("admin/", admin.site.urls),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("coaching.api.urls")),
    # HL7 CDS Hooks: the paths the specification fixes (no trailing slash).
    path("cds-services", cds.DiscoveryView.as_view(), name="cds-discovery"),
    path(f"cds-services/{SERVICE_ID}", cds.ServiceView.as_view(), name="cds-service"),
    path(f"cds-services/{SERVICE_ID}/feedback", cds.FeedbackView.as_view(), name="cds-feedback"),
    # The same with a trailing slash, which some CDS clients add to the base URL's paths.
    path("cds-services/", cds.unlisted(cds.DiscoveryView).as_view()),
    path(f"cds-services/{SERVICE_ID}/", cds.unlisted(cds.ServiceView).as_view()),
    path(f"cds-services/{SERVICE_ID}/feedback/", cds.unlisted(cds.FeedbackView).as_view()),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from a URL of its own (?script), not
    # inline: the Content-Security-Policy allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # Anything else under /api answers in JSON (a missing trailing slash is redirected).
    re_path(r"^(?:api|cds-services)(?:/[\s\S]*)?$", api_not_found),  # [\s\S]: a %0A too
]

# Errors Django answers outside any view: JSON under /api/ (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
