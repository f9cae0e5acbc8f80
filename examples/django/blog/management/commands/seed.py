"""
manage.py seed: a small, deterministic data set for the example.

8 authors, 3 publishers, 6 tags, 24 essays (essay i is by author i % 8 and
has tags i % 6 and (i + 1) % 6), 63 scenes per essay (1512 in all, enough
for an unbounded list of more than 1000 rows and for page 50 of 25); 12
posts (post i by author i % 8, tagged i % 6, with 3 comments each).
Refuses to run on a database that already holds essays.
"""
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from blog.models import Author, Comment, Essay, Post, Publisher, Scene, Tag

AUTHORS = 8
PUBLISHERS = 3
TAGS = ['django', 'postgres', 'performance', 'orm', 'sql', 'python']
ESSAYS = 24
SCENES_PER_ESSAY = 63
POSTS = 12
COMMENTS_PER_POST = 3


class Command(BaseCommand):
    help = 'Load the deterministic example data set.'

    @transaction.atomic
    def handle(self, *args, **options):
        if Essay.objects.exists():
            raise CommandError('the database already holds essays; seed a fresh database')
        authors = Author.objects.bulk_create(
            [Author(name='Author %d' % i) for i in range(AUTHORS)])
        publishers = Publisher.objects.bulk_create(
            [Publisher(name='Publisher %d' % i) for i in range(PUBLISHERS)])
        tags = Tag.objects.bulk_create([Tag(name=name) for name in TAGS])
        essays = Essay.objects.bulk_create([
            Essay(
                title='Essay %d' % i,
                body=('Paragraph %d of a long essay body. ' % i) * 60,
                created_by=authors[i % AUTHORS],
                publisher=publishers[i % PUBLISHERS],
            )
            for i in range(ESSAYS)
        ])
        Essay.tags.through.objects.bulk_create([
            Essay.tags.through(essay_id=essay.pk, tag_id=tags[(i + k) % len(tags)].pk)
            for i, essay in enumerate(essays)
            for k in (0, 1)
        ])
        Scene.objects.bulk_create([
            Scene(essay=essay, title='Scene %d.%d' % (i, j), estimated_seconds=30 + j)
            for i, essay in enumerate(essays)
            for j in range(SCENES_PER_ESSAY)
        ])
        posts = Post.objects.bulk_create([
            Post(title='Post %d' % i, author=authors[i % AUTHORS]) for i in range(POSTS)])
        Post.tags.through.objects.bulk_create([
            Post.tags.through(post_id=post.pk, tag_id=tags[i % len(tags)].pk)
            for i, post in enumerate(posts)])
        Comment.objects.bulk_create([
            Comment(post=post, body='Comment %d on post %d' % (j, i))
            for i, post in enumerate(posts)
            for j in range(COMMENTS_PER_POST)])
        self.stdout.write('seeded %d authors, %d publishers, %d tags, %d essays, %d scenes, %d posts' % (
            AUTHORS, PUBLISHERS, len(TAGS), ESSAYS, ESSAYS * SCENES_PER_ESSAY, POSTS))
