from django.urls import path

from . import integrations, views

app_name = "api"

# Member ids are the gym's own and may contain "/", so they match as paths; the advice
# route comes first so ".../<member>/advice/" is never read as a member named "x/advice".
urlpatterns = [
    path("events/", views.EventListCreateView.as_view(), name="events"),
    path("advice/", views.AdviceFeedView.as_view(), name="advice"),
    path("advice/<int:advice_id>/feedback/", integrations.AdviceFeedbackView.as_view(), name="advice-feedback"),
    path("members/", integrations.MemberListView.as_view(), name="members"),
    path("members/<path:member>/advice/", views.MemberAdviceView.as_view(), name="member-advice"),
    path("members/<path:member>/", views.MemberView.as_view(), name="member"),
    path("webhooks/", integrations.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", integrations.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<int:endpoint_id>/secret/", integrations.WebhookSecretView.as_view(), name="webhook-secret"),
]
