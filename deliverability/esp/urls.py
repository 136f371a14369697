from django.urls import path

from deliverability.esp import views

urlpatterns = [
    path("ses/", views.ses_hook, name="hook-ses"),
    path("sendgrid/", views.sendgrid_hook, name="hook-sendgrid"),
    path("mailgun/", views.mailgun_hook, name="hook-mailgun"),
    path("postmark/", views.postmark_hook, name="hook-postmark"),
]
