from django.urls import path

from . import views

urlpatterns = [
    path('ping/', views.ping, name='ping'),
    path('bad/forward-fk/', views.bad_forward_fk, name='bad-forward-fk'),
    path('good/forward-fk/', views.good_forward_fk, name='good-forward-fk'),
    path('bad/reverse-fk/', views.bad_reverse_fk, name='bad-reverse-fk'),
    path('good/reverse-fk/', views.good_reverse_fk, name='good-reverse-fk'),
    path('bad/m2m/', views.bad_m2m, name='bad-m2m'),
    path('good/m2m/', views.good_m2m, name='good-m2m'),
    path('bad/deferred/', views.bad_deferred, name='bad-deferred'),
    path('good/deferred/', views.good_deferred, name='good-deferred'),
    path('bad/aggregate/', views.bad_aggregate, name='bad-aggregate'),
    path('good/aggregate/', views.good_aggregate, name='good-aggregate'),
    # a route with a converter: its sqlcommenter value is URL-encoded
    path('bad/duplicates/<int:pk>/', views.bad_duplicates, name='bad-duplicates'),
    path('good/duplicates/<int:pk>/', views.good_duplicates, name='good-duplicates'),
    path('bad/write-loop/', views.bad_write_loop, name='bad-write-loop'),
    path('good/write-loop/', views.good_write_loop, name='good-write-loop'),
    path('bad/unbounded/', views.bad_unbounded, name='bad-unbounded'),
    path('good/unbounded/', views.good_unbounded, name='good-unbounded'),
    path('bad/offset/', views.bad_offset, name='bad-offset'),
    path('bad/post-list/', views.bad_post_list, name='bad-post-list'),
    path('good/post-list/', views.good_post_list, name='good-post-list'),
    path('good/offset/', views.good_offset, name='good-offset'),
]
