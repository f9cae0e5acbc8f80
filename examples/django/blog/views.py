"""
One BAD and one GOOD view per ORM performance pattern.

Each BAD view is the textbook trap (see the Django performance reference);
its GOOD twin returns the same data with a bounded number of queries.
Responses are small JSON documents so that every queryset is evaluated.
"""
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import JsonResponse

from .models import Author, Essay, Post, Scene

WRITE_BATCH = 10
PAGE_SIZE = 25


def ping(request):
    """One query; used to move the connection to another scope."""
    return JsonResponse({'authors': Author.objects.count()})


# -- forward foreign key ----------------------------------------------------

def bad_forward_fk(request):
    # one SELECT on blog_author per essay
    essays = Essay.objects.order_by('id')
    return JsonResponse({'authors': [essay.created_by.name for essay in essays]})


def good_forward_fk(request):
    essays = Essay.objects.select_related('created_by').order_by('id')
    return JsonResponse({'authors': [essay.created_by.name for essay in essays]})


# -- reverse foreign key ----------------------------------------------------

def bad_reverse_fk(request):
    # one SELECT on blog_scene per essay
    essays = Essay.objects.order_by('id')
    return JsonResponse({
        'scenes': {essay.pk: [scene.title for scene in essay.scenes.all()] for essay in essays},
    })


def good_reverse_fk(request):
    essays = Essay.objects.prefetch_related('scenes').order_by('id')
    return JsonResponse({
        'scenes': {essay.pk: [scene.title for scene in essay.scenes.all()] for essay in essays},
    })


# -- many-to-many -----------------------------------------------------------

def bad_m2m(request):
    # one SELECT on blog_tag JOIN blog_essay_tags per essay
    essays = Essay.objects.order_by('id')
    return JsonResponse({'tags': {essay.pk: [tag.name for tag in essay.tags.all()] for essay in essays}})


def good_m2m(request):
    essays = Essay.objects.prefetch_related('tags').order_by('id')
    return JsonResponse({'tags': {essay.pk: [tag.name for tag in essay.tags.all()] for essay in essays}})


# -- deferred field ---------------------------------------------------------

def bad_deferred(request):
    # only() leaves body out; reading it reloads each row by primary key
    essays = Essay.objects.only('id', 'title').order_by('id')
    return JsonResponse({'lengths': [len(essay.body) for essay in essays]})


def good_deferred(request):
    essays = Essay.objects.order_by('id')
    return JsonResponse({'lengths': [len(essay.body) for essay in essays]})


# -- aggregate per row ------------------------------------------------------

def bad_aggregate(request):
    # one SELECT COUNT(*) on blog_scene per essay
    essays = Essay.objects.order_by('id')
    return JsonResponse({'counts': {essay.pk: essay.scenes.count() for essay in essays}})


def good_aggregate(request):
    essays = Essay.objects.annotate(scene_count=Count('scenes')).order_by('id')
    return JsonResponse({'counts': {essay.pk: essay.scene_count for essay in essays}})


# -- duplicate queries ------------------------------------------------------

def bad_duplicates(request, pk):
    # the same lookup three times in one request (header, body, footer...)
    header = Author.objects.get(pk=pk).name
    body = Author.objects.get(pk=pk).name
    footer = Author.objects.get(pk=pk).name
    return JsonResponse({'names': [header, body, footer]})


def good_duplicates(request, pk):
    author = Author.objects.get(pk=pk)
    return JsonResponse({'names': [author.name] * 3})


# -- write loop -------------------------------------------------------------

def bad_write_loop(request):
    # one INSERT per row
    template = Essay.objects.order_by('id').values('created_by_id', 'publisher_id')[0]
    created = [
        Essay.objects.create(title='draft %d' % i, body='draft body %d' % i, **template).pk
        for i in range(WRITE_BATCH)
    ]
    return JsonResponse({'created': len(created)})


def good_write_loop(request):
    template = Essay.objects.order_by('id').values('created_by_id', 'publisher_id')[0]
    created = Essay.objects.bulk_create([
        Essay(title='draft %d' % i, body='draft body %d' % i, **template)
        for i in range(WRITE_BATCH)
    ])
    return JsonResponse({'created': len(created)})


# -- unbounded result and deep OFFSET (optional patterns) --------------------

def bad_unbounded(request):
    # every scene, no LIMIT
    return JsonResponse({'scenes': [scene.title for scene in Scene.objects.order_by('id')]})


def good_unbounded(request):
    return JsonResponse({'scenes': [scene.title for scene in Scene.objects.order_by('id')[:PAGE_SIZE]]})


def bad_offset(request):
    # page 50 of 25: LIMIT 25 OFFSET 1225, the server reads and drops 1225 rows
    page = Paginator(Scene.objects.order_by('id'), PAGE_SIZE).page(50)
    return JsonResponse({'scenes': [scene.pk for scene in page.object_list]})


def good_offset(request):
    # keyset: continue after the last id the client has seen
    after = int(request.GET.get('after', '0'))
    scenes = Scene.objects.filter(id__gt=after).order_by('id')[:PAGE_SIZE]
    return JsonResponse({'scenes': [scene.pk for scene in scenes]})


# -- a list view over three relations -----------------------------------------

def bad_post_list(request):
    # per post: its author (forward FK), its tags (many-to-many) and its
    # comments (reverse FK): three queries per row, one loop
    posts = Post.objects.order_by('id')
    return JsonResponse({'posts': [{
        'title': post.title,
        'author': post.author.name,
        'tags': [tag.name for tag in post.tags.all()],
        'comments': [comment.body for comment in post.comment_set.all()],
    } for post in posts]})


def good_post_list(request):
    posts = (Post.objects.select_related('author')
             .prefetch_related('tags', 'comment_set').order_by('id'))
    return JsonResponse({'posts': [{
        'title': post.title,
        'author': post.author.name,
        'tags': [tag.name for tag in post.tags.all()],
        'comments': [comment.body for comment in post.comment_set.all()],
    } for post in posts]})
