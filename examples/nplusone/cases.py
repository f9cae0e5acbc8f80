"""
nplusone's SQLAlchemy N+1 cases (tests/test_sqlalchemy.py), and the
server-side cursor, one-value and separate-lines cases of issue 16, with
SQLAlchemy 1.4 and psycopg2.

nplusone flags a lazy load of an instance that came from a query returning
several; its tests assert one lazy-load call on users[0].addresses.  Here
each becomes the loop it stands for (over the users, two of them): a
positive, where perfguard must report the N+1 on the relation that is looked
up per row, and nplusone's eager-loading twins (subqueryload, joinedload),
where nothing may be reported.

Relations (perfguard.n_plus_one.table_name): User.addresses -> address
(user_id); Address.user -> user (user_id, its key); User.hobbies and
Hobby.users -> users_hobbies (user_id / hobby_id).

Not ported: test_many_to_one_ignore and the TestProfile whitelist (nplusone's
own settings), and nplusone's Django, Flask-SQLAlchemy and peewee tests (the
same single lazy loads; the Django ones are covered by examples/zeal).
"""
from sqlalchemy.orm import joinedload, selectinload, subqueryload

from fixtures import four_users, one_owner_three_addresses, users_with_address_and_hobby
from models import Address, Hobby, User
from perfguard_cases import NP, Expect

CASES = []


class Case:
    def __init__(self, name, origin, kind, fixture, body, expect, skip=None):
        self.name = name
        self.origin = origin
        self.kind = kind
        self.fixture = fixture
        self.body = body
        self.expect = expect
        self.skip = skip or {}


def case(name, origin, kind, fixture, expect=None, skip=None):
    def register(body):
        CASES.append(Case(name, origin, kind, fixture, body, expect or Expect(), skip))
        return body
    return register


def positive(name, origin, fixture, table, repeats, distinct, fix=None, dups=None, skip=None):
    return case(name, origin, 'positive', fixture,
                Expect(n_plus_one={table: NP(repeats, distinct, fix)}, dups=dups), skip)


def twin(name, origin, fixture, skip=None, **kw):
    return case(name, origin, 'fixed twin', fixture, Expect(**kw), skip)


def negative(name, origin, fixture, **kw):
    return case(name, origin, 'negative', fixture, Expect(**kw))


ADDRESS = r'"?address"?'
# the relation, in Django's or Rails' words, or in SQLAlchemy's when the
# traffic is tagged framework=sqlalchemy (issue 17: joinedload(Address.user))
USER = r"'user'|:user\b|\.user\)"
USERS_HOBBIES = r'users_hobbies'
NO_SERVER_CURSOR = {'autocommit': 'SQLAlchemy declares its server-side cursors WITHOUT HOLD: '
                                  'psycopg2 refuses them outside a transaction'}


# ---- TestManyToOne ------------------------------------------------------------------

T = 'tests/test_sqlalchemy.py '


@positive('one_to_many', T + 'TestManyToOne.test_many_to_one', users_with_address_and_hobby,
          'address', 2, 2, ADDRESS)
def _(ctx):
    for user in ctx.session().query(User).all():
        list(user.addresses)


@twin('one_to_many_subquery', T + 'TestManyToOne.test_many_to_one_subquery',
      users_with_address_and_hobby)
def _(ctx):
    users = ctx.session().query(User).options(subqueryload(User.addresses)).all()
    for user in users:
        list(user.addresses)


@twin('one_to_many_joined', T + 'TestManyToOne.test_many_to_one_joined',
      users_with_address_and_hobby)
def _(ctx):
    users = ctx.session().query(User).options(joinedload(User.addresses)).all()
    for user in users:
        list(user.addresses)


@positive('many_to_one', T + 'TestManyToOne.test_many_to_one_reverse', users_with_address_and_hobby,
          'user', 2, 2, USER)
def _(ctx):
    for address in ctx.session().query(Address).all():
        address.user


@twin('many_to_one_subquery', T + 'TestManyToOne.test_many_to_one_reverse_subquery',
      users_with_address_and_hobby)
def _(ctx):
    addresses = ctx.session().query(Address).options(subqueryload(Address.user)).all()
    for address in addresses:
        address.user


@twin('many_to_one_joined', T + 'TestManyToOne.test_many_to_one_reverse_joined',
      users_with_address_and_hobby)
def _(ctx):
    for address in ctx.session().query(Address).options(joinedload(Address.user)).all():
        address.user


# ---- TestManyToMany --------------------------------------------------------------------

@positive('many_to_many', T + 'TestManyToMany.test_many_to_many', users_with_address_and_hobby,
          'users_hobbies', 2, 2, USERS_HOBBIES)
def _(ctx):
    for user in ctx.session().query(User).all():
        list(user.hobbies)


@twin('many_to_many_subquery', T + 'TestManyToMany.test_many_to_many_subquery',
      users_with_address_and_hobby)
def _(ctx):
    for user in ctx.session().query(User).options(subqueryload(User.hobbies)).all():
        list(user.hobbies)


@twin('many_to_many_joined', T + 'TestManyToMany.test_many_to_many_joined',
      users_with_address_and_hobby)
def _(ctx):
    for user in ctx.session().query(User).options(joinedload(User.hobbies)).all():
        list(user.hobbies)


@positive('many_to_many_reverse', T + 'TestManyToMany.test_many_to_many_reverse',
          users_with_address_and_hobby, 'users_hobbies', 2, 2, USERS_HOBBIES)
def _(ctx):
    for hobby in ctx.session().query(Hobby).all():
        list(hobby.users)


@twin('many_to_many_reverse_subquery', T + 'TestManyToMany.test_many_to_many_reverse_subquery',
      users_with_address_and_hobby)
def _(ctx):
    for hobby in ctx.session().query(Hobby).options(subqueryload(Hobby.users)).all():
        list(hobby.users)


@twin('many_to_many_reverse_joined', T + 'TestManyToMany.test_many_to_many_reverse_joined',
      users_with_address_and_hobby)
def _(ctx):
    for hobby in ctx.session().query(Hobby).options(joinedload(Hobby.users)).all():
        list(hobby.users)


@negative('non_orm_query', T + 'test_non_orm_query', users_with_address_and_hobby)
def _(ctx):
    ctx.session().query(Address.id).all()


# ---- server-side cursors as the parent ----------------------------------------------------

ISSUE = 'issue 16: '


@positive('yield_per', ISSUE + 'Query.yield_per(2): DECLARE ... CURSOR, FETCH FORWARD 2',
          four_users, 'address', 4, 4, ADDRESS, skip=NO_SERVER_CURSOR)
def _(ctx):
    for user in ctx.session().query(User).order_by(User.id).yield_per(2):
        list(user.addresses)


@twin('yield_per_selectin', ISSUE + 'Query.yield_per(2) with selectinload: one batch per chunk',
      four_users, skip=NO_SERVER_CURSOR)
def _(ctx):
    users = ctx.session().query(User).options(selectinload(User.addresses)).order_by(User.id)
    for user in users.yield_per(2):
        list(user.addresses)


@positive('named_cursor', ISSUE + 'a psycopg2 named cursor (itersize 2) as the parent',
          four_users, 'address', 4, 4, ADDRESS)
def _(ctx):
    conn = ctx.pg()
    parents = ctx.named_cursor(conn, 'users')
    parents.itersize = 2
    ctx.execute(parents, 'SELECT user_id FROM "user" ORDER BY user_id')
    with conn.cursor() as lookup:
        for (user_id,) in parents:
            ctx.execute(lookup, 'SELECT id, user_id FROM address WHERE user_id = %s', (user_id,))
            lookup.fetchall()
    parents.close()


@twin('named_cursor_batched', ISSUE + 'the named cursor, one = ANY() batch per chunk of 2',
      four_users)
def _(ctx):
    conn = ctx.pg()
    parents = ctx.named_cursor(conn, 'users')
    ctx.execute(parents, 'SELECT user_id FROM "user" ORDER BY user_id')
    with conn.cursor() as lookup:
        while True:
            chunk = parents.fetchmany(2)
            if not chunk:
                break
            ctx.execute(lookup, 'SELECT id, user_id FROM address WHERE user_id = ANY(%s)',
                        ([user_id for (user_id,) in chunk],))
            lookup.fetchall()
    parents.close()


# ---- one value, once per row ---------------------------------------------------------------

@positive('one_value_loop', ISSUE + 'psycopg2: the same user looked up once per address',
          one_owner_three_addresses, 'user', 3, 1, USER, dups={'user': 3})
def _(ctx):
    conn = ctx.pg()
    with conn.cursor() as cur, conn.cursor() as lookup:
        ctx.execute(cur, 'SELECT id, user_id FROM address ORDER BY id')
        for _id, user_id in cur.fetchall():
            ctx.execute(lookup, 'SELECT user_id FROM "user" WHERE user_id = %s', (user_id,))
            lookup.fetchone()


@twin('one_value_hoisted', ISSUE + 'psycopg2: the user looked up once', one_owner_three_addresses)
def _(ctx):
    conn = ctx.pg()
    with conn.cursor() as cur:
        ctx.execute(cur, 'SELECT id, user_id FROM address ORDER BY id')
        rows = cur.fetchall()
        owners = {}
        for user_id in sorted({r[1] for r in rows}):
            ctx.execute(cur, 'SELECT user_id FROM "user" WHERE user_id = %s', (user_id,))
            owners[user_id] = cur.fetchone()


@positive('one_value_loop_orm', ISSUE + 'SQLAlchemy: query(User).filter(...).one() per address, one owner',
          one_owner_three_addresses, 'user', 3, 1, USER, dups={'user': 3})
def _(ctx):
    session = ctx.session()
    for address in session.query(Address).order_by(Address.id).all():
        session.query(User).filter(User.id == address.user_id).one()


# ---- two objects loaded on separate lines ----------------------------------------------------

@negative('two_gets', ISSUE + 'session.get(User, 1) and session.get(User, 2) on separate lines',
          users_with_address_and_hobby)
def _(ctx):
    session = ctx.session()
    session.get(User, 1)
    session.get(User, 2)


@negative('two_gets_addresses', ISSUE + 'session.get(User, 1).addresses, then the same for 2',
          users_with_address_and_hobby)
def _(ctx):
    session = ctx.session()
    list(session.get(User, 1).addresses)
    list(session.get(User, 2).addresses)


@negative('two_lookups_psycopg2', ISSUE + 'psycopg2: a user and its addresses, then another one',
          users_with_address_and_hobby)
def _(ctx):
    conn = ctx.pg()
    with conn.cursor() as cur:
        ctx.execute(cur, 'SELECT user_id FROM "user" WHERE user_id = %s', (1,))
        cur.fetchone()
        ctx.execute(cur, 'SELECT id, user_id FROM address WHERE user_id = %s', (1,))
        cur.fetchall()
        ctx.execute(cur, 'SELECT user_id FROM "user" WHERE user_id = %s', (2,))
        cur.fetchone()
        ctx.execute(cur, 'SELECT id, user_id FROM address WHERE user_id = %s', (2,))
        cur.fetchall()
