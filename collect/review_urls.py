from django.urls import path

from collect import review_views

app_name = "review"

urlpatterns = [
    path("", review_views.queue, name="queue"),
    path("<uuid:instance_id>/", review_views.detail, name="detail"),
    path("<uuid:instance_id>/decide", review_views.decide, name="decide"),
    path("<uuid:instance_id>/files/<str:name>", review_views.attachment, name="attachment"),
]
