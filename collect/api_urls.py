"""/api/collect/..."""

from django.urls import path

from collect import api

urlpatterns = [
    path("devices/", api.DevicesView.as_view(), name="collect-devices"),
    path("devices/<uuid:pk>/revoke/", api.RevokeDeviceView.as_view(), name="collect-revoke"),
    path("enrolment-codes/", api.EnrolmentCodesView.as_view(), name="collect-codes"),
    path("assignments/", api.AssignmentsView.as_view(), name="collect-assignments"),
    path("assignments/upload/", api.AssignmentUploadView.as_view(), name="collect-upload"),
    path("form-versions/<int:pk>/", api.FormVersionView.as_view(), name="collect-form-version"),
    path("sync/", api.SyncView.as_view(), name="collect-sync"),
    path("returned/", api.ReturnedView.as_view(), name="collect-returned"),
]
