"""
Views with an ORM performance bug and their clean twins.  QUERIES gives the
statements each sends (checked against the server log by check_views.py),
and what perfguard must report for one request of it.
"""
from django.http import HttpResponse

from .models import Author, Book, Hit, Tag

WRITES = 50

# view name -> (queries per request, n_plus_one, duplicate, write_loop)
QUERIES = {
    'books-bad': (31, 30, None, None),
    'books-good': (1, None, None, None),
    'tags-bad': (31, 30, None, None),
    'tags-good': (2, None, None, None),
    'write-bad': (WRITES, None, None, WRITES),
    'write-good': (1, None, None, None),
    'dup-bad': (4, None, 3, None),
    'dup-good': (2, None, None, None),
    'page': (3, None, None, None),
}


def _text(lines):
    return HttpResponse('\n'.join(str(x) for x in lines), content_type='text/plain')


def books_bad(request):
    # N+1 over a forward foreign key: one author query per book
    return _text('%s by %s' % (b.title, b.author.name) for b in Book.objects.order_by('id'))


def books_good(request):
    return _text('%s by %s' % (b.title, b.author.name)
                 for b in Book.objects.select_related('author').order_by('id'))


def tags_bad(request):
    # N+1 over a many-to-many: one tag query per book
    return _text('%s: %s' % (b.title, ','.join(t.name for t in b.tags.all()))
                 for b in Book.objects.order_by('id'))


def tags_good(request):
    return _text('%s: %s' % (b.title, ','.join(t.name for t in b.tags.all()))
                 for b in Book.objects.prefetch_related('tags').order_by('id'))


def write_bad(request):
    # a write loop: one INSERT per row, in autocommit
    for k in range(WRITES):
        Hit.objects.create(route='django', n=k)
    return _text(['ok'])


def write_good(request):
    Hit.objects.bulk_create([Hit(route='django', n=k) for k in range(WRITES)])
    return _text(['ok'])


def dup_bad(request):
    # the same lookup with the same parameters three times
    books = list(Book.objects.order_by('id')[:5])
    first = [Author.objects.get(pk=7).name for _ in range(3)]
    return _text([len(books)] + first)


def dup_good(request):
    books = list(Book.objects.order_by('id')[:5])
    return _text([len(books), Author.objects.get(pk=7).name])


def page(request):
    # a page that is already fixed: three distinct, bounded queries
    return _text([Author.objects.count()] +
                 ['%s by %s' % (b.title, b.author.name)
                  for b in Book.objects.select_related('author').order_by('id')[:10]] +
                 [t.name for t in Tag.objects.order_by('id')])
