"""Every view under django/<phase>/, so each phase has its own routes."""
import os

from django.urls import include, path

urlpatterns = [
    path('django/%s/' % os.environ.get('PFGT_PHASE', 'dev'), include('pooler_app.urls')),
]
