from django.urls import path

from . import views

app_name = "api"

urlpatterns = [
    path("events/", views.EventListCreateView.as_view(), name="events"),
    path("advice/", views.AdviceFeedView.as_view(), name="advice"),
    path("members/<str:member>/", views.MemberView.as_view(), name="member"),
    path("members/<str:member>/advice/", views.MemberAdviceView.as_view(), name="member-advice"),
]
