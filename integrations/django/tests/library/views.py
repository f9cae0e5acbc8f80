"""Views with and without the usual ORM performance bugs."""
from django.db.models import Count
from django.http import HttpResponse

from .models import Author, Book


def _lines(lines):
    return HttpResponse('\n'.join(lines), content_type='text/plain')


def books_bad(request):
    # N+1: one query for the books, then one per book for its author
    return _lines('%s by %s' % (b.title, b.author.name) for b in Book.objects.order_by('id'))


def books_good(request):
    return _lines('%s by %s' % (b.title, b.author.name)
                  for b in Book.objects.select_related('author').order_by('id'))


def authors_bad(request):
    # N+1 over a reverse foreign key
    return _lines('%s: %d' % (a.name, len(a.books.all())) for a in Author.objects.order_by('id'))


def authors_good(request):
    return _lines('%s: %d' % (a.name, len(a.books.all()))
                  for a in Author.objects.prefetch_related('books').order_by('id'))


def books_duplicate(request):
    # the same lookup with the same parameters, once per book
    lines = []
    for book in Book.objects.select_related('author').order_by('id')[:5]:
        first = Author.objects.order_by('id').first()
        lines.append('%s (first author: %s)' % (book.title, first.name))
    return _lines(lines)


def books_three(request):
    # three N+1s in one page: each book's author and tags, each author's book count
    lines = ['%s by %s [%s]' % (b.title, b.author.name, ', '.join(t.name for t in b.tags.all()))
             for b in Book.objects.order_by('id')]
    lines += ['%s: %d books' % (a.name, a.books.count()) for a in Author.objects.order_by('id')]
    return _lines(lines)


def books_three_fixed(request):
    books = Book.objects.select_related('author').prefetch_related('tags').order_by('id')
    lines = ['%s by %s [%s]' % (b.title, b.author.name, ', '.join(t.name for t in b.tags.all()))
             for b in books]
    lines += ['%s: %d books' % (a.name, a.num_books)
              for a in Author.objects.annotate(num_books=Count('books')).order_by('id')]
    return _lines(lines)
