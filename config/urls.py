"""URLs: the admin for clinicians and operators, the gym API, health and API docs."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from coaching.api.views import HealthView, api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("api/v1/", include("coaching.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Anything else under /api answers in JSON (a missing trailing slash is redirected).
    re_path(r"^api(?:/.*)?$", api_not_found),
]
