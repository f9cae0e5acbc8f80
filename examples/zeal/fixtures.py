"""
Fixtures of the zeal port: the factories of zeal's tests/factories.py
(UserFactory, ProfileFactory, PostFactory, and Tag.objects.create(obj=...)),
with deterministic values instead of Faker's.

Everything is written through the 'setup' alias (another backend), after a
TRUNCATE ... RESTART IDENTITY, so ids start at 1 in every case; the objects
handed to a case are then re-homed on 'default', so that whatever a case does
with them runs on the application's connection.
"""
from django.db import connections

from social.models import Post, Profile, Tag, User

SETUP = 'setup'
TABLES = ('social_user', 'social_profile', 'social_post', 'social_tag',
          'social_user_following', 'social_user_blocked')


_serial = [0]


def reset():
    _serial[0] = 0
    with connections[SETUP].cursor() as cur:
        cur.execute('TRUNCATE %s RESTART IDENTITY CASCADE' % ', '.join(TABLES))


def home(*objs):
    """Re-home objects created on 'setup' to the application's alias (a list)."""
    for obj in objs:
        obj._state.db = 'default'
    return list(objs)


def user():
    # ids restart at 1 after reset(), so user<n> has id n
    _serial[0] += 1
    return User.objects.using(SETUP).create(username='user%d' % _serial[0])


def users(n):
    return [user() for _ in range(n)]


def profile(u):
    return Profile.objects.using(SETUP).create(user=u, display_name='Display %d' % u.pk)


def post(author):
    return Post.objects.using(SETUP).create(author=author, text='A sentence by %s.' % author.username)


def tag(obj=None, label='x'):
    if obj is None:
        return Tag.objects.using(SETUP).create(label=label)
    return Tag.objects.using(SETUP).create(obj=obj, label=label)


# ---- the fixtures of zeal's tests -------------------------------------------

def users_with_posts(n):
    """n users with one post each (create_batch(2) + PostFactory per user, or range(4))."""
    reset()
    us = users(n)
    for u in us:
        post(u)
    return {'users': home(*us)}


def one_author_two_posts():
    """UserFactory.create() and PostFactory.create_batch(2, author=user)."""
    reset()
    u = user()
    p1, p2 = post(u), post(u)
    return {'user': home(u)[0], 'posts': home(p1, p2)}


def one_user_one_post():
    reset()
    u = user()
    post(u)
    return {'user': home(u)[0]}


def users_with_profiles(n):
    reset()
    us = users(n)
    profiles = [profile(u) for u in us]
    return {'users': home(*us), 'profiles': home(*profiles)}


def following_each_other():
    """user_1.following.add(user_2) and user_2.following.add(user_1)."""
    reset()
    u1, u2 = users(2)
    u1.following.add(u2)
    u2.following.add(u1)
    return {'users': home(u1, u2)}


def blocking_each_other():
    reset()
    u1, u2 = users(2)
    u1.blocked.add(u2)
    u2.blocked.add(u1)
    return {'users': home(u1, u2)}


def influencer_with_four_followers():
    """influencer.followers.set(4 users): 5 users, 4 of them following the first."""
    reset()
    influencer = user()
    fans = users(4)
    influencer.followers.set(fans)
    return {'users': home(influencer, *fans)}


def follower_of_four():
    """follower.following.set(4 users): 5 users, the first following the 4 others."""
    reset()
    follower = user()
    idols = users(4)
    follower.following.set(idols)
    return {'users': home(follower, *idols)}


def users_with_tags(n, labels=None):
    reset()
    us = users(n)
    tags = [tag(u, (labels[i] if labels else 'x')) for i, u in enumerate(us)]
    return {'users': home(*us), 'tags': home(*tags)}


def one_user_one_tag():
    reset()
    u = user()
    t = tag(u, 'a')
    return {'user': home(u)[0], 'tag': home(t)[0]}


def tags_without_object():
    reset()
    tag(None, 'a')
    tag(None, 'b')
    return {}
