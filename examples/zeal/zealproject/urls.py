from django.urls import path

from social import views

urlpatterns = [
    # one request that loads every user, then each user's profile (an N+1)
    path('users/', views.users_with_profiles),
    # one user and its profile
    path('user/<int:id>/', views.user_with_profile),
]
