from django.urls import path

from . import views

urlpatterns = [
    path('books/bad/', views.books_bad, name='books-bad'),
    path('books/good/', views.books_good, name='books-good'),
    path('books/duplicate/', views.books_duplicate, name='books-duplicate'),
    path('authors/bad/', views.authors_bad, name='authors-bad'),
    path('authors/good/', views.authors_good, name='authors-good'),
    path('books/three/', views.books_three, name='books-three'),
    path('books/three-fixed/', views.books_three_fixed, name='books-three-fixed'),
]
