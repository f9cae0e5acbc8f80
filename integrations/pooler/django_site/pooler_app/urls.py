from django.urls import path

from . import views

urlpatterns = [
    path('books/bad/', views.books_bad, name='books-bad'),
    path('books/good/', views.books_good, name='books-good'),
    path('tags/bad/', views.tags_bad, name='tags-bad'),
    path('tags/good/', views.tags_good, name='tags-good'),
    path('write/bad/', views.write_bad, name='write-bad'),
    path('write/good/', views.write_good, name='write-good'),
    path('dup/bad/', views.dup_bad, name='dup-bad'),
    path('dup/good/', views.dup_good, name='dup-good'),
    path('page/', views.page, name='page'),
]
