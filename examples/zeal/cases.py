"""
django-zeal's N+1 test cases (tests/test_nplusones.py), ported to perfguard.

Each zeal test becomes one or more cases: its N+1 loop (a positive: zeal
raises NPlusOneError, perfguard must report the N+1 on the same relation),
the fixed twin that follows it in the same test (select_related /
prefetch_related: nothing may be reported), and zeal's "no false positive"
tests (negatives: nothing may be reported but the duplicates the SQL really
contains).  The fixtures are zeal's (2 parents; 4 or 5 for the .iterator()
tests).  Every case is run by run_cases.py tagged, untagged in autocommit and
untagged inside one transaction.

The relation an N+1 is reported on is perfguard.n_plus_one.table_name, the
table whose filter column repeats:

    Post.author, Tag.obj, deferred User fields   social_user (id)
    User.posts                                   social_post (author_id)
    User.profile                                 social_profile (user_id)
    User.following / User.followers              social_user_following (from_user_id / to_user_id)
    User.blocked / User.user_set                 social_user_blocked
    User.tags                                    social_tag

and the fix must name it: select_related('author') / select_related('user')
where the catalog's foreign key gives the field, the relation's table
otherwise; generic relations have no foreign key to name them from, so only
their table and counts are checked.

Not ported (see README.md): test_detects_nplusone_on_get (User.objects.get()
in a loop over objects that were never loaded from the database: in SQL it is
the same as test_no_false_positive_on_get_on_different_lines),
test_has_configurable_threshold (zeal's setting; the rule under test has no
threshold to lower for a loop with a parent).
"""
from itertools import islice

from django.db.models import prefetch_related_objects

from perfguard_cases import NP, Expect
from social.models import Post, Profile, Tag, User

import fixtures as fx

CASES = []


class Case:
    def __init__(self, name, origin, kind, fixture, body, expect):
        self.name = name
        self.origin = origin
        self.kind = kind
        self.fixture = fixture
        self.body = body
        self.expect = expect


def case(name, origin, kind, fixture, expect=None):
    def register(body):
        CASES.append(Case(name, origin, kind, fixture, body, expect or Expect()))
        return body
    return register


def positive(name, origin, fixture, table, repeats, distinct, fix=None, **kw):
    return case(name, origin, 'positive', fixture,
                Expect(n_plus_one={table: NP(repeats, distinct, fix)}, **kw))


def twin(name, origin, fixture, **kw):
    return case(name, origin, 'fixed twin', fixture, Expect(**kw))


def negative(name, origin, fixture, **kw):
    return case(name, origin, 'negative', fixture, Expect(**kw))


def touch(value):
    """Read a value, as zeal's `_ = ...` lines do."""
    return value


def iterate_prefetching(queryset, lookup, chunk_size):
    """
    queryset.prefetch_related(lookup).iterator(chunk_size) as Django >= 4.1
    runs it: read chunk_size rows from the server-side cursor, prefetch the
    lookup for that chunk in one query, hand the rows out, read the next
    chunk.  Django 3.2 silently drops prefetch_related() on .iterator(), which
    would turn zeal's fixed twins back into N+1 loops; this sends the SQL that
    zeal's twins send on the Django versions zeal supports.
    """
    rows = queryset.iterator(chunk_size=chunk_size)
    while True:
        chunk = list(islice(rows, chunk_size))
        if not chunk:
            return
        prefetch_related_objects(chunk, lookup)
        yield from chunk


SELECT_AUTHOR = r"select_related\('author'\)"
SELECT_USER = r"select_related\('user'\)"


# ---- forward many-to-one: Post.author ---------------------------------------

@positive('fwd_m2o', 'test_detects_nplusone_in_forward_many_to_one',
          lambda: fx.users_with_posts(2), 'social_user', 2, 2, SELECT_AUTHOR)
def _(f, ctx):
    for post in Post.objects.all():
        touch(post.author.username)


@twin('fwd_m2o_fixed', 'test_detects_nplusone_in_forward_many_to_one',
      lambda: fx.users_with_posts(2))
def _(f, ctx):
    for post in Post.objects.select_related('author').all():
        touch(post.author.username)


@positive('fwd_m2o_iter', 'test_detects_nplusone_in_forward_many_to_one_iterator',
          lambda: fx.users_with_posts(4), 'social_user', 4, 4, SELECT_AUTHOR)
def _(f, ctx):
    for post in Post.objects.all().iterator(chunk_size=2):
        touch(post.author.username)


@twin('fwd_m2o_iter_fixed', 'test_detects_nplusone_in_forward_many_to_one_iterator',
      lambda: fx.users_with_posts(4))
def _(f, ctx):
    for post in Post.objects.select_related('author').iterator(chunk_size=2):
        touch(post.author.username)


@negative('fwd_m2o_prefetch', 'test_handles_prefetch_instead_of_select_related_in_forward_many_to_one',
          lambda: fx.users_with_posts(2))
def _(f, ctx):
    # should be a select_related, but two queries are no N+1
    for post in Post.objects.prefetch_related('author').all():
        touch(post.author.username)


# zeal: test_no_false_positive_when_loading_single_object_forward_many_to_one,
# three blocks, each its own zeal_context (here: its own request).  Both posts
# have the same author: the two author lookups are one duplicate.
SINGLE_FWD_M2O = 'test_no_false_positive_when_loading_single_object_forward_many_to_one'


@negative('single_fwd_m2o_first', SINGLE_FWD_M2O, fx.one_author_two_posts,
          dups={'social_user': 2})
def _(f, ctx):
    p1, p2 = f['posts']
    post_1 = Post.objects.filter(pk=p1.pk).first()
    post_2 = Post.objects.filter(pk=p2.pk).first()
    touch(post_1.author)
    touch(post_2.author)


@negative('single_fwd_m2o_slice', SINGLE_FWD_M2O, fx.one_author_two_posts,
          dups={'social_user': 2})
def _(f, ctx):
    p1, p2 = f['posts']
    post_1 = Post.objects.filter(pk=p1.pk).all()[0]
    post_2 = Post.objects.filter(pk=p2.pk).all()[0]
    touch(post_1.author)
    touch(post_2.author)


@negative('single_fwd_m2o_get', SINGLE_FWD_M2O, fx.one_author_two_posts,
          dups={'social_user': 2})
def _(f, ctx):
    p1, p2 = f['posts']
    post_1 = Post.objects.get(pk=p1.pk)
    post_2 = Post.objects.get(pk=p2.pk)
    touch(post_1.author)
    touch(post_2.author)


# ---- reverse many-to-one: User.posts ------------------------------------------

@positive('rev_m2o', 'test_detects_nplusone_in_reverse_many_to_one',
          lambda: fx.users_with_posts(2), 'social_post', 2, 2, r'social_post')
def _(f, ctx):
    for user in User.objects.all():
        list(user.posts.all())


@twin('rev_m2o_fixed', 'test_detects_nplusone_in_reverse_many_to_one',
      lambda: fx.users_with_posts(2))
def _(f, ctx):
    for user in User.objects.prefetch_related('posts').all():
        list(user.posts.all())


@positive('rev_m2o_iter', 'test_detects_nplusone_in_reverse_many_to_one_iterator',
          lambda: fx.users_with_posts(4), 'social_post', 4, 4, r'social_post')
def _(f, ctx):
    for user in User.objects.all().iterator(chunk_size=2):
        list(user.posts.all())


@twin('rev_m2o_iter_fixed', 'test_detects_nplusone_in_reverse_many_to_one_iterator',
      lambda: fx.users_with_posts(4))
def _(f, ctx):
    # one prefetch query per chunk of 2 rows (a batch, not a per-row lookup)
    for user in iterate_prefetching(User.objects.all(), 'posts', 2):
        list(user.posts.all())


@negative('rev_m2o_twice', 'test_no_false_positive_when_calling_reverse_many_to_one_twice',
          fx.one_user_one_post)
def _(f, ctx):
    queryset = f['user'].posts.all()
    list(queryset)
    list(queryset)   # cached


# ---- forward one-to-one: Profile.user -----------------------------------------

@positive('fwd_o2o', 'test_detects_nplusone_in_forward_one_to_one',
          lambda: fx.users_with_profiles(2), 'social_user', 2, 2, SELECT_USER)
def _(f, ctx):
    for profile in Profile.objects.all():
        touch(profile.user.username)


@twin('fwd_o2o_fixed', 'test_detects_nplusone_in_forward_one_to_one',
      lambda: fx.users_with_profiles(2))
def _(f, ctx):
    for profile in Profile.objects.select_related('user').all():
        touch(profile.user.username)


@positive('fwd_o2o_iter', 'test_detects_nplusone_in_forward_one_to_one_iterator',
          lambda: fx.users_with_profiles(4), 'social_user', 4, 4, SELECT_USER)
def _(f, ctx):
    for profile in Profile.objects.all().iterator(chunk_size=2):
        touch(profile.user.username)


@twin('fwd_o2o_iter_fixed', 'test_detects_nplusone_in_forward_one_to_one_iterator',
      lambda: fx.users_with_profiles(4))
def _(f, ctx):
    for profile in Profile.objects.select_related('user').iterator(chunk_size=2):
        touch(profile.user.username)


@negative('fwd_o2o_prefetch', 'test_handles_prefetch_instead_of_select_related_in_forward_one_to_one',
          lambda: fx.users_with_profiles(2))
def _(f, ctx):
    for profile in Profile.objects.prefetch_related('user').all():
        touch(profile.user.username)


SINGLE_FWD_O2O = 'test_no_false_positive_when_loading_single_object_forward_one_to_one'


@negative('single_fwd_o2o_first', SINGLE_FWD_O2O, lambda: fx.users_with_profiles(2))
def _(f, ctx):
    p1, p2 = f['profiles']
    profile_1 = Profile.objects.filter(pk=p1.pk).first()
    profile_2 = Profile.objects.filter(pk=p2.pk).first()
    touch(profile_1.user.username)
    touch(profile_2.user.username)


@negative('single_fwd_o2o_slice', SINGLE_FWD_O2O, lambda: fx.users_with_profiles(2))
def _(f, ctx):
    p1, p2 = f['profiles']
    profile_1 = Profile.objects.filter(pk=p1.pk)[0]
    profile_2 = Profile.objects.filter(pk=p2.pk)[0]
    touch(profile_1.user.username)
    touch(profile_2.user.username)


@negative('single_fwd_o2o_get', SINGLE_FWD_O2O, lambda: fx.users_with_profiles(2))
def _(f, ctx):
    p1, p2 = f['profiles']
    profile_1 = Profile.objects.get(pk=p1.pk)
    profile_2 = Profile.objects.get(pk=p2.pk)
    touch(profile_1.user.username)
    touch(profile_2.user.username)


# ---- reverse one-to-one: User.profile -----------------------------------------

@positive('rev_o2o', 'test_detects_nplusone_in_reverse_one_to_one',
          lambda: fx.users_with_profiles(2), 'social_profile', 2, 2, r'social_profile')
def _(f, ctx):
    for user in User.objects.all():
        touch(user.profile.display_name)


@twin('rev_o2o_fixed', 'test_detects_nplusone_in_reverse_one_to_one',
      lambda: fx.users_with_profiles(2))
def _(f, ctx):
    for user in User.objects.select_related('profile').all():
        touch(user.profile.display_name)


@positive('rev_o2o_iter', 'test_detects_nplusone_in_reverse_one_to_one_iterator',
          lambda: fx.users_with_profiles(4), 'social_profile', 4, 4, r'social_profile')
def _(f, ctx):
    for user in User.objects.all().iterator(chunk_size=2):
        touch(user.profile.display_name)


@twin('rev_o2o_iter_fixed', 'test_detects_nplusone_in_reverse_one_to_one_iterator',
      lambda: fx.users_with_profiles(4))
def _(f, ctx):
    for user in User.objects.select_related('profile').iterator(chunk_size=2):
        touch(user.profile.display_name)


@negative('rev_o2o_prefetch', 'test_handles_prefetch_instead_of_select_related_in_reverse_one_to_one',
          lambda: fx.users_with_profiles(2))
def _(f, ctx):
    for user in User.objects.prefetch_related('profile').all():
        touch(user.profile.display_name)


SINGLE_REV_O2O = 'test_no_false_positive_when_loading_single_object_reverse_one_to_one'


@negative('single_rev_o2o_first', SINGLE_REV_O2O, lambda: fx.users_with_profiles(2))
def _(f, ctx):
    u1, u2 = f['users']
    user_1 = User.objects.filter(pk=u1.pk).first()
    user_2 = User.objects.filter(pk=u2.pk).first()
    touch(user_1.profile.display_name)
    touch(user_2.profile.display_name)


@negative('single_rev_o2o_slice', SINGLE_REV_O2O, lambda: fx.users_with_profiles(2))
def _(f, ctx):
    u1, u2 = f['users']
    user_1 = User.objects.filter(pk=u1.pk)[0]
    user_2 = User.objects.filter(pk=u2.pk)[0]
    touch(user_1.profile.display_name)
    touch(user_2.profile.display_name)


@negative('single_rev_o2o_get', SINGLE_REV_O2O, lambda: fx.users_with_profiles(2))
def _(f, ctx):
    u1, u2 = f['users']
    user_1 = User.objects.get(pk=u1.pk)
    user_2 = User.objects.get(pk=u2.pk)
    touch(user_1.profile.display_name)
    touch(user_2.profile.display_name)


# ---- forward many-to-many: User.following -------------------------------------

@positive('fwd_m2m', 'test_detects_nplusone_in_forward_many_to_many',
          fx.following_each_other, 'social_user_following', 2, 2, r'social_user_following')
def _(f, ctx):
    for user in User.objects.all():
        list(user.following.all())


@twin('fwd_m2m_fixed', 'test_detects_nplusone_in_forward_many_to_many', fx.following_each_other)
def _(f, ctx):
    for user in User.objects.prefetch_related('following').all():
        list(user.following.all())


@positive('fwd_m2m_iter', 'test_detects_nplusone_in_forward_many_to_many_iterator',
          fx.influencer_with_four_followers, 'social_user_following', 5, 5,
          r'social_user_following')
def _(f, ctx):
    for user in User.objects.iterator(chunk_size=2):
        list(user.following.all())


@twin('fwd_m2m_iter_fixed', 'test_detects_nplusone_in_forward_many_to_many_iterator',
      fx.influencer_with_four_followers)
def _(f, ctx):
    for user in iterate_prefetching(User.objects.all(), 'following', 2):
        list(user.following.all())


SINGLE_FWD_M2M = 'test_no_false_positive_when_loading_single_object_forward_many_to_many'


@negative('single_fwd_m2m_first', SINGLE_FWD_M2M, fx.following_each_other)
def _(f, ctx):
    user_1, user_2 = f['users']
    touch(user_1.following.first().username)
    touch(user_2.following.first().username)


@negative('single_fwd_m2m_slice', SINGLE_FWD_M2M, fx.following_each_other)
def _(f, ctx):
    user_1, user_2 = f['users']
    touch(user_1.following.all()[0].username)
    touch(user_2.following.all()[0].username)


@negative('single_fwd_m2m_get', SINGLE_FWD_M2M, fx.following_each_other)
def _(f, ctx):
    user_1, user_2 = f['users']
    touch(user_1.following.get(pk=user_2.pk).username)
    touch(user_2.following.get(pk=user_1.pk).username)


# ---- reverse many-to-many: User.followers -------------------------------------

@positive('rev_m2m', 'test_detects_nplusone_in_reverse_many_to_many',
          fx.following_each_other, 'social_user_following', 2, 2, r'social_user_following')
def _(f, ctx):
    for user in User.objects.all():
        list(user.followers.all())


@twin('rev_m2m_fixed', 'test_detects_nplusone_in_reverse_many_to_many', fx.following_each_other)
def _(f, ctx):
    for user in User.objects.prefetch_related('followers').all():
        list(user.followers.all())


@positive('rev_m2m_iter', 'test_detects_nplusone_in_reverse_many_to_many_iterator',
          fx.follower_of_four, 'social_user_following', 5, 5, r'social_user_following')
def _(f, ctx):
    for user in User.objects.all().iterator(chunk_size=2):
        list(user.followers.all())


@twin('rev_m2m_iter_fixed', 'test_detects_nplusone_in_reverse_many_to_many_iterator',
      fx.follower_of_four)
def _(f, ctx):
    for user in iterate_prefetching(User.objects.all(), 'followers', 2):
        list(user.followers.all())


SINGLE_REV_M2M = 'test_no_false_positive_when_loading_single_object_reverse_many_to_many'


@negative('single_rev_m2m_first', SINGLE_REV_M2M, fx.following_each_other)
def _(f, ctx):
    user_1, user_2 = f['users']
    touch(user_1.followers.first().username)
    touch(user_2.followers.first().username)


@negative('single_rev_m2m_slice', SINGLE_REV_M2M, fx.following_each_other)
def _(f, ctx):
    user_1, user_2 = f['users']
    touch(user_1.followers.all()[0].username)
    touch(user_2.followers.all()[0].username)


@negative('single_rev_m2m_get', SINGLE_REV_M2M, fx.following_each_other)
def _(f, ctx):
    user_1, user_2 = f['users']
    touch(user_1.followers.get(pk=user_2.pk).username)
    touch(user_2.followers.get(pk=user_1.pk).username)


# ---- many-to-many without related_name: User.blocked, User.user_set ----------

@positive('fwd_m2m_noname', 'test_detects_nplusone_in_forward_many_to_many_with_no_related_name',
          fx.blocking_each_other, 'social_user_blocked', 2, 2, r'social_user_blocked')
def _(f, ctx):
    for user in User.objects.all():
        list(user.blocked.all())


@twin('fwd_m2m_noname_fixed', 'test_detects_nplusone_in_forward_many_to_many_with_no_related_name',
      fx.blocking_each_other)
def _(f, ctx):
    for user in User.objects.prefetch_related('blocked').all():
        list(user.blocked.all())


@positive('rev_m2m_noname', 'test_detects_nplusone_in_reverse_many_to_many_with_no_related_name',
          fx.blocking_each_other, 'social_user_blocked', 2, 2, r'social_user_blocked')
def _(f, ctx):
    for user in User.objects.all():
        list(user.user_set.all())


@twin('rev_m2m_noname_fixed', 'test_detects_nplusone_in_reverse_many_to_many_with_no_related_name',
      fx.blocking_each_other)
def _(f, ctx):
    for user in User.objects.prefetch_related('user_set').all():
        list(user.user_set.all())


# ---- deferred fields ------------------------------------------------------------

@positive('deferred', 'test_detects_nplusone_due_to_deferred_fields',
          lambda: fx.users_with_posts(2), 'social_user', 2, 2, r'username')
def _(f, ctx):
    for post in Post.objects.all().select_related('author').only('author__id'):
        touch(post.author.username)


@twin('deferred_fixed', 'test_detects_nplusone_due_to_deferred_fields',
      lambda: fx.users_with_posts(2))
def _(f, ctx):
    for post in Post.objects.all().select_related('author').only('author__username'):
        touch(post.author.username)


@positive('deferred_iter', 'test_detects_nplusone_due_to_deferred_fields_in_iterator',
          lambda: fx.users_with_posts(4), 'social_user', 4, 4, r'username')
def _(f, ctx):
    qs = Post.objects.all().select_related('author').only('author__id')
    for post in qs.iterator(chunk_size=2):
        touch(post.author.username)


@twin('deferred_iter_fixed', 'test_detects_nplusone_due_to_deferred_fields_in_iterator',
      lambda: fx.users_with_posts(4))
def _(f, ctx):
    qs = Post.objects.all().select_related('author').only('author__username')
    for post in qs.iterator(chunk_size=2):
        touch(post.author.username)


@negative('deferred_prefetch', 'test_handles_prefetch_instead_of_select_related_with_deferred_fields',
          lambda: fx.users_with_posts(2))
def _(f, ctx):
    for post in Post.objects.all().prefetch_related('author').only('author__username'):
        touch(post.author.username)


# ---- .get() and calls on separate lines -----------------------------------------

@negative('get_separate_lines', 'test_no_false_positive_on_get_on_different_lines',
          lambda: fx.users_with_posts(2))
def _(f, ctx):
    users = f['users']
    touch(User.objects.get(pk=users[0].pk))
    touch(User.objects.get(pk=users[1].pk))


@negative('calls_separate_lines', 'test_ignores_calls_on_different_lines',
          lambda: fx.users_with_posts(2))
def _(f, ctx):
    user_1, user_2 = f['users']
    list(user_1.posts.all())
    list(user_2.posts.all())


# ---- web requests ------------------------------------------------------------------

@positive('web_users', 'test_works_in_web_requests',
          lambda: fx.users_with_profiles(2), 'social_profile', 2, 2, r'social_profile')
def _(f, ctx):
    response = ctx.get('/users/')
    assert response.status_code == 200, response.status_code


@negative('web_single_users', 'test_works_in_web_requests + test_does_nothing_if_not_in_middleware',
          lambda: fx.users_with_profiles(2))
def _(f, ctx):
    # two requests, one user each (tagged: two traces; untagged: back to back)
    user_1, user_2 = f['users']
    assert ctx.get('/user/%d/' % user_1.pk).status_code == 200
    assert ctx.get('/user/%d/' % user_2.pk).status_code == 200


# ---- prefetch_related_objects ------------------------------------------------------

PRO = 'TestPrefetchRelatedObjects.'


@positive('pro_rev_m2o', PRO + 'test_reverse_many_to_one_per_instance_is_n_plus_one',
          lambda: fx.users_with_posts(2), 'social_post', 2, 2, r'social_post')
def _(f, ctx):
    users = list(User.objects.all())
    for user in users:
        prefetch_related_objects([user], 'posts')


@positive('pro_fwd_m2o', PRO + 'test_forward_many_to_one_per_instance_is_n_plus_one',
          lambda: fx.users_with_posts(2), 'social_user', 2, 2, SELECT_AUTHOR)
def _(f, ctx):
    posts = list(Post.objects.all())
    for post in posts:
        prefetch_related_objects([post], 'author')


@positive('pro_rev_o2o', PRO + 'test_reverse_one_to_one_per_instance_is_n_plus_one',
          lambda: fx.users_with_profiles(2), 'social_profile', 2, 2, r'social_profile')
def _(f, ctx):
    users = list(User.objects.all())
    for user in users:
        prefetch_related_objects([user], 'profile')


@positive('pro_fwd_m2m', PRO + 'test_forward_many_to_many_per_instance_is_n_plus_one',
          fx.following_each_other, 'social_user_following', 2, 2, r'social_user_following')
def _(f, ctx):
    users = list(User.objects.all())
    for user in users:
        prefetch_related_objects([user], 'following')


@positive('pro_rev_m2m', PRO + 'test_reverse_many_to_many_per_instance_is_n_plus_one',
          fx.following_each_other, 'social_user_following', 2, 2, r'social_user_following')
def _(f, ctx):
    users = list(User.objects.all())
    for user in users:
        prefetch_related_objects([user], 'followers')


@positive('pro_generic', PRO + 'test_generic_relation_per_instance_is_n_plus_one',
          lambda: fx.users_with_tags(2), 'social_tag', 2, 2)
def _(f, ctx):
    users = list(User.objects.all())
    for user in users:
        prefetch_related_objects([user], 'tags')


@positive('pro_in_iterator', PRO + 'test_per_instance_in_iterator_loop_is_n_plus_one',
          lambda: fx.users_with_posts(2), 'social_post', 2, 2, r'social_post')
def _(f, ctx):
    # one FETCH FORWARD 1 per row: the parent is the cursor, with every row it returned
    for user in User.objects.iterator(chunk_size=1):
        prefetch_related_objects([user], 'posts')


@negative('pro_bulk', PRO + 'test_bulk_is_not_n_plus_one', lambda: fx.users_with_posts(2))
def _(f, ctx):
    users = list(User.objects.all())
    prefetch_related_objects(users, 'posts')


@negative('pro_singly_loaded', PRO + 'test_singly_loaded_prefetch_is_not_n_plus_one',
          lambda: fx.users_with_posts(2))
def _(f, ctx):
    user_1, user_2 = f['users']

    def prefetch_one(user):
        prefetch_related_objects([user], 'posts')

    prefetch_one(User.objects.get(pk=user_1.pk))
    prefetch_one(User.objects.get(pk=user_2.pk))


# ---- generic relation: User.tags --------------------------------------------------

@positive('generic_rel', 'test_detects_nplusone_in_generic_relation',
          lambda: fx.users_with_tags(2, ['a', 'b']), 'social_tag', 2, 2)
def _(f, ctx):
    for user in User.objects.all():
        list(user.tags.all())


@twin('generic_rel_fixed', 'test_detects_nplusone_in_generic_relation',
      lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    for user in User.objects.prefetch_related('tags').all():
        list(user.tags.all())


@positive('generic_rel_iter', 'test_detects_nplusone_in_generic_relation_iterator',
          lambda: fx.users_with_tags(4), 'social_tag', 4, 4)
def _(f, ctx):
    for user in User.objects.all().iterator(chunk_size=2):
        list(user.tags.all())


@twin('generic_rel_iter_fixed', 'test_detects_nplusone_in_generic_relation_iterator',
      lambda: fx.users_with_tags(4))
def _(f, ctx):
    for user in iterate_prefetching(User.objects.all(), 'tags', 2):
        list(user.tags.all())


SINGLE_GR = 'test_no_false_positive_when_loading_single_object_generic_relation'


@negative('single_generic_rel_first', SINGLE_GR, lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    u1, u2 = f['users']
    user_1 = User.objects.filter(pk=u1.pk).first()
    user_2 = User.objects.filter(pk=u2.pk).first()
    list(user_1.tags.all())
    list(user_2.tags.all())


@negative('single_generic_rel_slice', SINGLE_GR, lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    u1, u2 = f['users']
    user_1 = User.objects.filter(pk=u1.pk)[0]
    user_2 = User.objects.filter(pk=u2.pk)[0]
    list(user_1.tags.all())
    list(user_2.tags.all())


@negative('single_generic_rel_get', SINGLE_GR, lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    u1, u2 = f['users']
    user_1 = User.objects.get(pk=u1.pk)
    user_2 = User.objects.get(pk=u2.pk)
    list(user_1.tags.all())
    list(user_2.tags.all())


@case('generic_rel_ignored', 'test_zeal_ignore_works_for_generic_relation', 'suppressed',
      lambda: fx.users_with_tags(2, ['a', 'b']),
      Expect(n_plus_one={'social_tag': NP(2, 2)}, ignored=True))
def _(f, ctx):
    # zeal_ignore([{"model": "social.User", "field": "tags"}]) becomes
    # perfguard.ignore_route(<this case's route>) (run_cases.py sets it up)
    for user in User.objects.all():
        list(user.tags.all())


@negative('generic_rel_twice', 'test_no_false_positive_when_calling_generic_relation_twice',
          fx.one_user_one_tag)
def _(f, ctx):
    queryset = f['user'].tags.all()
    list(queryset)
    list(queryset)   # cached


# ---- generic foreign key: Tag.obj ------------------------------------------------------

@positive('gfk', 'test_detects_nplusone_in_generic_foreign_key',
          lambda: fx.users_with_tags(2, ['a', 'b']), 'social_user', 2, 2)
def _(f, ctx):
    for tag in Tag.objects.all():
        touch(tag.obj)


@twin('gfk_fixed', 'test_detects_nplusone_in_generic_foreign_key',
      lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    for tag in Tag.objects.prefetch_related('obj').all():
        touch(tag.obj)


@positive('gfk_iter', 'test_detects_nplusone_in_generic_foreign_key_iterator',
          lambda: fx.users_with_tags(4), 'social_user', 4, 4)
def _(f, ctx):
    for tag in Tag.objects.all().iterator(chunk_size=2):
        touch(tag.obj)


@twin('gfk_iter_fixed', 'test_detects_nplusone_in_generic_foreign_key_iterator',
      lambda: fx.users_with_tags(4))
def _(f, ctx):
    for tag in iterate_prefetching(Tag.objects.all(), 'obj', 2):
        touch(tag.obj)


SINGLE_GFK = 'test_no_false_positive_when_loading_single_object_generic_foreign_key'


@negative('single_gfk_first', SINGLE_GFK, lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    t1, t2 = f['tags']
    tag_1 = Tag.objects.filter(pk=t1.pk).first()
    tag_2 = Tag.objects.filter(pk=t2.pk).first()
    touch(tag_1.obj)
    touch(tag_2.obj)


@negative('single_gfk_slice', SINGLE_GFK, lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    t1, t2 = f['tags']
    tag_1 = Tag.objects.filter(pk=t1.pk)[0]
    tag_2 = Tag.objects.filter(pk=t2.pk)[0]
    touch(tag_1.obj)
    touch(tag_2.obj)


@negative('single_gfk_get', SINGLE_GFK, lambda: fx.users_with_tags(2, ['a', 'b']))
def _(f, ctx):
    t1, t2 = f['tags']
    tag_1 = Tag.objects.get(pk=t1.pk)
    tag_2 = Tag.objects.get(pk=t2.pk)
    touch(tag_1.obj)
    touch(tag_2.obj)


@case('gfk_ignored', 'test_zeal_ignore_works_for_generic_foreign_key', 'suppressed',
      lambda: fx.users_with_tags(2, ['a', 'b']),
      Expect(n_plus_one={'social_user': NP(2, 2)}, ignored=True))
def _(f, ctx):
    for tag in Tag.objects.all():
        touch(tag.obj)


@negative('gfk_null', 'test_no_false_positive_when_generic_foreign_key_is_null',
          fx.tags_without_object)
def _(f, ctx):
    for tag in Tag.objects.all():
        assert tag.obj is None


@negative('gfk_twice', 'test_no_false_positive_when_accessing_generic_foreign_key_twice',
          fx.one_user_one_tag)
def _(f, ctx):
    [tag] = list(Tag.objects.all())
    touch(tag.obj)
    touch(tag.obj)   # the descriptor's cache
