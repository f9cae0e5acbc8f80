"""
The models of django-zeal's test project (tests/djangoproject/social), for
Django 3.2 on PostgreSQL.  Every kind of relation zeal knows is here once:

    Post.author      forward many-to-one     User.posts       its reverse
    Profile.user     forward one-to-one      User.profile     its reverse
    User.following   forward many-to-many    User.followers   its reverse
    User.blocked     many-to-many without related_name (reverse: user_set)
    User.tags        generic relation        Tag.obj          generic foreign key

Tables are social_user, social_profile, social_post, social_tag and the link
tables social_user_following and social_user_blocked; Django creates the
foreign-key constraints, so perfguard can name the relation from the catalog.
"""
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models


class User(models.Model):
    username = models.TextField()
    following = models.ManyToManyField('User', related_name='followers')
    # no related_name on purpose: the reverse accessor is user_set
    blocked = models.ManyToManyField('user')
    tags = GenericRelation('Tag')


class Profile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE)
    display_name = models.TextField()


class Post(models.Model):
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name='posts')
    text = models.TextField()


class Tag(models.Model):
    label = models.TextField()
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE,
                                     null=True, blank=True)
    object_id = models.PositiveIntegerField(null=True, blank=True)
    obj = GenericForeignKey()
