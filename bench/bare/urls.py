"""The bare endpoint at the product's path, and a health check for the benchmark to wait on."""

from django.urls import path

from bench.bare.views import BareEventsView, healthz

urlpatterns = [
    path("healthz", healthz),
    path("api/v1/events/", BareEventsView.as_view()),
]
