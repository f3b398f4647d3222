from django.urls import path

from accounts import views

urlpatterns = [
    path("hospital/invite/", views.invite, name="invite-user"),
    path("invitations/<str:token>/", views.accept, name="accept-invitation"),
]
