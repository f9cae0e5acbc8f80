"""The two views of zeal's web-request tests."""
from django.http import JsonResponse

from .models import User


def user_with_profile(request, id):
    user = User.objects.get(id=id)
    return JsonResponse({'username': user.username,
                         'display_name': user.profile.display_name})


def users_with_profiles(request):
    # an N+1: one profile query per user
    users = [{'username': u.username, 'display_name': u.profile.display_name}
             for u in User.objects.all()]
    return JsonResponse({'users': users})
