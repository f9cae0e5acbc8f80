"""
End-to-end checks of perfguard_sqlalchemy against a live cluster (run by
run_e2e.sh, which exports PGHOST/PGPORT/PGUSER/PGDATABASE).  Prints one
"ok - ..." / "not ok - ..." line per check and "N passed, M failed" last.
"""
import os
import re
import sys
import time
import traceback
import types
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sqlalchemy import Column, ForeignKey, Integer, String, Table, create_engine, event, text  # noqa: E402
from sqlalchemy.orm import (Session, declarative_base, joinedload,  # noqa: E402
                            relationship, selectinload)

from perfguard_sqlalchemy import (PerfguardError, format_comment, instrument,  # noqa: E402
                                  max_queries, no_n_plus_one, request_id_tags, tagged)

Base = declarative_base()


class Author(Base):
    __tablename__ = 'author'
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)
    posts = relationship('Post', back_populates='author', lazy='select')


class Post(Base):
    __tablename__ = 'post'
    id = Column(Integer, primary_key=True)
    author_id = Column(Integer, ForeignKey('author.id'), nullable=False)
    title = Column(String, nullable=False)
    author = relationship('Author', back_populates='posts', lazy='select')


# A list page over three relations (issue 17): for each story its user
# (many-to-one), its tags (many-to-many) and its comments (one-to-many).
story_tags = Table('story_tags', Base.metadata,
                   Column('story_id', ForeignKey('stories.id'), primary_key=True),
                   Column('tag_id', ForeignKey('tags.id'), primary_key=True))


class User(Base):
    __tablename__ = 'users'
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)


class Tag(Base):
    __tablename__ = 'tags'
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)


class Story(Base):
    __tablename__ = 'stories'
    id = Column(Integer, primary_key=True)
    title = Column(String, nullable=False)
    user_id = Column(Integer, ForeignKey('users.id'), nullable=False)
    user = relationship('User', lazy='select')
    tags = relationship('Tag', secondary=story_tags, lazy='select')
    comments = relationship('Comment', back_populates='story', lazy='select')


class Comment(Base):
    __tablename__ = 'comments'
    id = Column(Integer, primary_key=True)
    story_id = Column(Integer, ForeignKey('stories.id'), nullable=False)
    body = Column(String, nullable=False)
    story = relationship('Story', back_populates='comments', lazy='select')


results = []


def check(name, fn):
    try:
        ok = fn()
    except Exception:
        traceback.print_exc()
        ok = False
    results.append(bool(ok))
    print('%s - %s' % ('ok' if ok else 'not ok', name))


def url():
    return 'postgresql+psycopg2://%s@/%s?host=%s&port=%s' % (
        os.environ['PGUSER'], os.environ['PGDATABASE'], os.environ['PGHOST'], os.environ['PGPORT'])


engine = create_engine(url(), future=True)
instrument(engine, framework='sqlalchemy')
admin = create_engine(url(), future=True, isolation_level='AUTOCOMMIT')

Base.metadata.create_all(engine)
with Session(engine) as s:
    s.add_all(Author(id=i, name='Author %d' % i) for i in range(1, 11))
    s.flush()
    s.add_all(Post(id=i, author_id=(i - 1) % 10 + 1, title='Post %d' % i) for i in range(1, 31))
    s.add_all(User(id=i, name='User %d' % i) for i in range(1, 7))
    s.add_all(Tag(id=i, name='tag %d' % i) for i in range(1, 5))
    s.flush()
    s.add_all(Story(id=i, user_id=(i - 1) % 6 + 1, title='Story %d' % i) for i in range(1, 13))
    s.flush()
    s.execute(story_tags.insert(), [{'story_id': i, 'tag_id': (i - 1) % 4 + 1} for i in range(1, 13)])
    s.add_all(Comment(id=i, story_id=(i - 1) % 12 + 1, body='Comment %d' % i) for i in range(1, 37))
    s.commit()
with admin.connect() as c:
    c.execute(text('ANALYZE'))
    c.execute(text('SELECT perfguard.reset()'))


def rows(sql):
    with admin.connect() as c:
        return c.execute(text(sql)).fetchall()


def page_lazy_posts():
    with tagged(route='/posts', controller='posts.index'), Session(engine) as s:
        return ['%s by %s' % (p.title, p.author.name) for p in s.query(Post).order_by(Post.id)]


def page_joined_posts():
    with tagged(route='/posts-joined', controller='posts.index'), Session(engine) as s:
        q = s.query(Post).options(joinedload(Post.author)).order_by(Post.id)
        return ['%s by %s' % (p.title, p.author.name) for p in q]


def page_lazy_authors():
    with tagged(route='/authors', controller='authors.index'), Session(engine) as s:
        return ['%s: %d' % (a.name, len(a.posts)) for a in s.query(Author).order_by(Author.id)]


def page_selectin_authors():
    with tagged(route='/authors-selectin', controller='authors.index'), Session(engine) as s:
        q = s.query(Author).options(selectinload(Author.posts)).order_by(Author.id)
        return ['%s: %d' % (a.name, len(a.posts)) for a in q]


def sep():
    # a statement with other tags closes the previous tagged scope
    with tagged(route='/separator'), engine.connect() as c:
        c.execute(text('SELECT 1'))


check('format_comment sorts and URL-encodes',
      lambda: format_comment({'route': '/posts/<id>', 'framework': 'sqlalchemy', 'action': None})
      == "/*framework='sqlalchemy',route='%2Fposts%2F%3Cid%3E'*/")

check('lazy loading page returns 30 rows', lambda: len(page_lazy_posts()) == 30)
sep()
check('joinedload page returns 30 rows', lambda: len(page_joined_posts()) == 30)
sep()
page_lazy_authors()
sep()
page_selectin_authors()
sep()

n1 = rows("SELECT route, query, table_name, suggestion FROM perfguard.n_plus_one ORDER BY route")
print('perfguard.n_plus_one:', n1)
check('the lazy many-to-one loop is flagged on route /posts',
      lambda: any(r[0] == '/posts' and 'FROM author' in r[1] and r[2] == 'author' for r in n1))
check('its suggestion names the join', lambda: any(r[0] == '/posts' and 'JOIN author' in (r[3] or '') for r in n1))
check('the lazy one-to-many loop is flagged on route /authors',
      lambda: any(r[0] == '/authors' and 'FROM post' in r[1] for r in n1))
check('joinedload and selectinload pages are clean',
      lambda: not any(r[0] in ('/posts-joined', '/authors-selectin') for r in n1))
check('the route tags reached perfguard.requests',
      lambda: {'/posts', '/posts-joined', '/authors', '/authors-selectin'} <=
      {r[0] for r in rows('SELECT route FROM perfguard.requests')})


def guard_fires():
    with Session(engine) as s:
        try:
            with no_n_plus_one(s):
                [p.author.name for p in s.query(Post).order_by(Post.id)]
        except PerfguardError as e:
            print(str(e))
            msg = ' '.join(str(e).split())
            return (e.sqlstate == 'PF001' and 'FROM author WHERE author.id = $1' in msg
                    and 'N+1' in msg and 'JOIN author ON author.id = post.author_id' in msg)
    return False


def guard_passes_joined():
    with Session(engine) as s:
        with no_n_plus_one(s):
            names = [p.author.name for p in
                     s.query(Post).options(joinedload(Post.author)).order_by(Post.id)]
        with no_n_plus_one(s):
            counts = [len(a.posts) for a in
                      s.query(Author).options(selectinload(Author.posts)).order_by(Author.id)]
    return len(names) == 30 and sum(counts) == 30


def session_usable_and_guard_off():
    with Session(engine) as s:
        try:
            with no_n_plus_one(s):
                [len(a.posts) for a in s.query(Author).order_by(Author.id)]
            return False
        except PerfguardError as e:
            if e.sqlstate != 'PF001':
                return False
        setting = s.execute(text("SELECT current_setting('perfguard.on_n_plus_one')")).scalar()
        s.expire_all()
        again = [p.author.name for p in s.query(Post).order_by(Post.id)]
        return setting == 'off' and len(again) == 30


def max_queries_guard():
    with engine.connect() as c:
        with max_queries(c, 2):
            c.execute(text('SELECT 1'))
            c.execute(text('SELECT 2'))
        try:
            with max_queries(c, 2):
                for i in range(3):
                    c.execute(text('SELECT :i'), {'i': i})
        except PerfguardError as e:
            return e.sqlstate == 'PF003'
    return False


# issue 17: one card for the loop over three relations, one fix in
# SQLAlchemy's vocabulary; the page that applies that fix is clean
FIX = ('.options(joinedload(Story.user), selectinload(Story.tags), '
       'selectinload(Story.comments))')


def story_page(options):
    route = '/stories-fixed' if options else '/stories'
    with tagged(route=route, controller='stories.index'), Session(engine) as s:
        q = s.query(Story)
        if options:
            q = q.options(joinedload(Story.user), selectinload(Story.tags),
                          selectinload(Story.comments))
        return [(st.title, st.user.name, [t.name for t in st.tags], [c.body for c in st.comments])
                for st in q.order_by(Story.id)]


check('the lazy story page returns 12 rows', lambda: len(story_page(False)) == 12)
sep()
check('the page with the suggested options returns 12 rows', lambda: len(story_page(True)) == 12)
sep()
cards = rows("SELECT route, category, framework, suggestion, cardinality(queryids) "
             "FROM perfguard.findings WHERE route LIKE '/stories%'")
print('perfguard.findings:', cards)
check('one card for /stories, a sequence of 3 statements',
      lambda: [(c[0], c[1], c[4]) for c in cards] == [('/stories', 'n_plus_one_sequence', 3)])
check('its fix is SQLAlchemy: %s' % FIX,
      lambda: cards and ('SQLAlchemy: ' + FIX) in cards[0][3])
check('tagged framework=sqlalchemy: no Django or Rails vocabulary',
      lambda: cards and cards[0][2] == 'sqlalchemy' and 'Django' not in cards[0][3]
      and 'Rails' not in cards[0][3] and 'prefetch_related' not in cards[0][3])
check('no card for the page that applies the fix', lambda: not [c for c in cards if c[0] == '/stories-fixed'])

check('no_n_plus_one raises PF001 naming the statement on the lazy loop', guard_fires)
check('no_n_plus_one passes with joinedload and selectinload', guard_passes_joined)
check('after a failure the session works and the guard is off', session_usable_and_guard_off)
check('max_queries on a Connection', max_queries_guard)


# ---- request ids (issue 15): one per tagged() request, held in a contextvar

sent = []


@event.listens_for(engine, 'after_cursor_execute')
def record(conn, cursor, statement, parameters, context, executemany):
    sent.append(statement)


def tag(sql, key):
    m = re.search(r"%s='([^']*)'" % key, sql)
    return m.group(1) if m else None


def ids_of(fn):
    """The request_id tags of the statements fn sends."""
    del sent[:]
    fn()
    return [tag(sql, 'request_id') for sql in sent]


def one_id_per_request():
    a = ids_of(page_lazy_posts)
    b = ids_of(page_lazy_posts)
    print('request_id of two requests: %s, %s' % (sorted(set(a), key=str), sorted(set(b), key=str)))
    # the posts, then each of the 10 authors once (the identity map)
    return (len(a) == 11 and len(set(a)) == 1 and re.match('^[0-9a-f]{32}$', a[0] or '')
            and len(b) == 11 and len(set(b)) == 1 and a[0] != b[0])


def nested_blocks_keep_the_id():
    def page():
        with tagged(route='/nested'), engine.connect() as c:
            c.execute(text('SELECT 1'))
            with tagged(action='inner'):
                c.execute(text('SELECT 2'))
    got = ids_of(page)
    return len(got) == 2 and got[0] and got[0] == got[1] and "action='inner'" in sent[1]


def own_id_or_none():
    def page():
        with engine.connect() as c:
            with tagged(route='/own', request_id='req-42'):
                c.execute(text('SELECT 1'))
            with tagged(route='/none', request_id=None):
                c.execute(text('SELECT 1'))
    got = ids_of(page)
    print('own id, none: %s' % got)
    return got == ['req-42', None] and "route='%%2Fnone'" in sent[1]


def fake_opentelemetry(trace_id, span_id, valid=True):
    """A stand-in for opentelemetry.trace with one current span (OpenTelemetry is not installed here)."""
    context = types.SimpleNamespace(trace_id=trace_id, span_id=span_id, trace_flags=1,
                                    is_valid=valid)
    span = types.SimpleNamespace(get_span_context=lambda: context)
    module = types.ModuleType('opentelemetry.trace')
    module.get_current_span = lambda: span
    return mock.patch.dict(sys.modules, {'opentelemetry.trace': module})


def opentelemetry_traceparent():
    with mock.patch.dict(sys.modules, {'opentelemetry.trace': None}):
        fallback = request_id_tags()
    with fake_opentelemetry(0, 0, valid=False):
        no_span = request_id_tags()
    with fake_opentelemetry(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7):
        got = ids_of(page_lazy_posts)
        tps = {tag(sql, 'traceparent') for sql in sent}
    return (set(fallback) == {'request_id'} and set(no_span) == {'request_id'}
            and got == [None] * 11
            and tps == {'00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'})


# request_gap 100ms on these connections, so their requests end quickly
quick = create_engine(url(), future=True, pool_size=2, max_overflow=0,
                      connect_args={'options': '-c perfguard.request_gap=100ms'})
quick_ac = create_engine(url(), future=True, isolation_level='AUTOCOMMIT', pool_size=2,
                         max_overflow=0, connect_args={'options': '-c perfguard.request_gap=100ms'})
for e in (quick, quick_ac):
    instrument(e, framework='sqlalchemy')


def request_spans_connections():
    # one request whose statements the pool hands to three connections (two
    # backends of a transactional engine, one in autocommit): one request of
    # 31 queries with one N+1 of 30, not three pieces
    conns = [quick.connect(), quick.connect(), quick_ac.connect()]
    pids = {c.execute(text('SELECT pg_backend_pid()')).scalar() for c in conns}
    for c in conns:
        c.commit() if c.get_transaction() else None
    time.sleep(0.3)
    with tagged(route='/spread', controller='posts.index'):
        with Session(bind=conns[0]) as s:
            posts = s.query(Post).order_by(Post.id).all()
            ids = [p.author_id for p in posts]
        for k, author_id in enumerate(ids):
            c = conns[k * 3 // len(ids)]
            c.execute(text('SELECT name FROM author WHERE id = :i'), {'i': author_id}).scalar()
        for c in conns:
            if c.get_transaction() is not None:
                c.commit()
    for c in conns:
        c.close()
    time.sleep(0.5)
    req = rows("SELECT requests, queries, max_queries FROM perfguard.requests WHERE route = '/spread'")
    n1 = rows("SELECT occurrences, total_repeats, max_repeats FROM perfguard.n_plus_one "
              "WHERE route = '/spread'")
    print('/spread on %d backends: requests %s, n_plus_one %s' % (len(pids), req, n1))
    return len(pids) == 3 and req == [(1, 31, 31)] and n1 == [(1, 30, 30)]


def back_to_back_requests_stay_apart():
    # ten requests of a clean page back to back on one connection: ten requests, no finding
    with quick.connect() as c:
        for _ in range(10):
            with tagged(route='/b2b'):
                c.execute(text('SELECT count(*) FROM author')).scalar()
                c.execute(text('SELECT id, title FROM post ORDER BY id LIMIT 5')).fetchall()
                c.commit()
    time.sleep(0.5)
    req = rows("SELECT requests, queries, max_queries FROM perfguard.requests WHERE route = '/b2b'")
    found = rows("SELECT category FROM perfguard.findings WHERE route = '/b2b'")
    print('/b2b: requests %s, findings %s' % (req, found))
    return req == [(10, 20, 2)] and found == []


def guard_inside_a_request():
    # the guard's begin_request() carries no id: no one-query request of the route
    def page():
        with tagged(route='/guarded'), Session(quick) as s:
            with no_n_plus_one(s, label='guarded'):
                [p.author.name for p in s.query(Post).options(joinedload(Post.author))]
    del sent[:]
    page()
    time.sleep(0.5)
    begin = [sql for sql in sent if 'begin_request' in sql]
    req = rows("SELECT route, requests, queries FROM perfguard.requests "
               "WHERE route IN ('/guarded', 'guarded') ORDER BY route")
    print('guard inside a request: %s' % (req,))
    return (len(begin) == 1 and tag(begin[0], 'request_id') is None
            and "route='%%2Fguarded'" in begin[0] and req == [('guarded', 1, 1)])


event.listen(quick, 'after_cursor_execute', record)
check('each tagged() request sends one random request_id, a new one per request', one_id_per_request)
check('nested tagged() blocks keep the request_id', nested_blocks_keep_the_id)
check("tagged(request_id='...') is used as is; request_id=None sends none", own_id_or_none)
check('with an OpenTelemetry span, the traceparent instead of request_id', opentelemetry_traceparent)
check('a request spread over three pooled connections is one request with one N+1 of 30',
      request_spans_connections)
check('ten back-to-back requests on one connection: ten requests, no finding',
      back_to_back_requests_stay_apart)
check('a guard inside a tagged request opens no request of its own', guard_inside_a_request)



# ---- the pytest fixture (issue 19): collect, tag the test, fail once listing all

def run_pytest():
    """Run pytest_suite/ (some of its tests fail on purpose); {test name: (outcome, text)}."""
    import subprocess
    import xml.etree.ElementTree as ET
    here = os.path.dirname(os.path.abspath(__file__))
    junit = os.path.join(os.environ.get('PFG_TMP', '/tmp'), 'pytest-junit.xml')
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-q',
                           '--junitxml', junit, os.path.join(here, 'pytest_suite')],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout)
    if 'No module named pytest' in proc.stdout:
        print('pytest is missing: apt-get install python3-pytest (scripts/setup.sh)')
        return {}
    outcomes = {}
    for case in ET.parse(junit).getroot().iter('testcase'):
        name = '%s.%s' % (case.get('classname').rsplit('.', 1)[-1], case.get('name'))
        parts = [(child.tag, (child.text or '') + (child.get('message') or ''))
                 for child in case if child.tag in ('failure', 'error', 'skipped')]
        outcomes[name] = parts
    print('pytest outcomes: %s' % {k: [tag for tag, _ in v] for k, v in outcomes.items()})
    return outcomes


def finding(text, number):
    """(route, count, statement, parent, fix) of finding number in a PF004 message, or None."""
    m = re.search(r'^%d\. N\+1 query in request "([^"]*)": ran (\d+) times with \d+ different '
                  r'parameter sets: (.*?)\n   parent: (.*?)\n   fix: (.*?)$' % number,
                  text, re.M | re.S)
    return m.groups() if m else None


with admin.connect() as c:
    c.execute(text('SELECT perfguard.reset()'))
pytest_outcomes = run_pytest()


def only_error(name):
    """
    The PerfguardError message of the one teardown error of a test that
    passed otherwise (without pytest's 'E   ' prefixes), else ''.
    """
    parts = pytest_outcomes.get(name, [])
    if [tag for tag, _ in parts] != ['error']:
        return ''
    m = re.search(r'^(E\s+)perfguard_sqlalchemy\.PerfguardError: ', parts[0][1], re.M)
    if not m:
        return ''
    prefix = m.group(1)
    lines = [line[len(prefix):] for line in parts[0][1].splitlines() if line.startswith(prefix)]
    return '\n'.join(lines)[len('perfguard_sqlalchemy.PerfguardError: '):]


def three_fail_once():
    text = only_error('test_collecting.test_three_n_plus_ones')
    print(text[:3000])
    if not text.startswith('PF004 perfguard: 3 findings\n'):
        return False
    expected = [('FROM author \nWHERE author.id = $1', 'JOIN author ON author.id = post.author_id'),
                ('FROM post \nWHERE $1 = post.author_id', 'JOIN post ON post.author_id = author.id'),
                ('SELECT count(post.id) AS count_1 \nFROM post \nWHERE post.author_id = $1',
                 'GROUP BY author_id')]
    for number, (statement, fix) in enumerate(expected, start=1):
        got = finding(text, number)
        print('finding %d: %s' % (number, got))
        if not got or got[0] != '[test] /three' or statement not in got[2] or fix not in got[4] \
                or int(got[1]) < 10:
            return False
    # and the queries the test ran, with their parameters: 1 + 10 + 1 + 10 + 1 + 10
    return (finding(text, 4) is None and '\nCaptured queries were:\n1. SELECT post.id' in text
            and re.search(r'^2\. SELECT author\.id .* WHERE author\.id = 1$', text, re.M)
            and re.search(r'^33\. SELECT count\(post\.id\) .* WHERE post\.author_id = 10$',
                          text, re.M)
            and not re.search(r'^34\. ', text, re.M)
            and "perfguard='test'" not in text)


check('pytest fixture: three N+1s fail the test once, listing all three with their fixes',
      three_fail_once)
check('pytest fixture: the fixed twin passes',
      lambda: pytest_outcomes.get('test_collecting.test_three_fixed') == [])
check('pytest fixture: an N+1 in the test body is labelled with the test',
      lambda: finding(only_error('test_collecting.test_n_plus_one_in_the_test_body'), 1)[0]
      == '[test] test_n_plus_one_in_the_test_body')
check('pytest fixture: a test that fails on its own reports only that, and leaves nothing behind',
      lambda: [tag for tag, _ in pytest_outcomes.get('test_collecting.test_fails_on_its_own', [])]
      == ['failure'] and 'PF004' not in pytest_outcomes['test_collecting.test_fails_on_its_own'][0][1]
      and pytest_outcomes.get('test_collecting.test_after_a_failure') == [])
check('pytest fixture: duplicates and too many queries when the test class asks',
      lambda: re.search(r'\APF004 perfguard: 2 findings\n1\. duplicate query in request '
                        r'"\[test\] /dup": the same parameters ran 6 times: .*?\n   fix: .*?\n2\. '
                        r'request "\[test\] /dup" ran 6 queries, more than '
                        r'perfguard.max_queries_per_request \(5\)\n',
                        only_error('TestDuplicates.test_duplicates_and_too_many'), re.S))
check('pytest fixture: perfguard_collect = () collects nothing',
      lambda: pytest_outcomes.get('TestNotCollecting.test_three_n_plus_ones') == [])


def test_traffic_apart():
    hidden = rows("SELECT count(*) FROM perfguard.findings WHERE route LIKE '%/three%'")
    requests = rows("SELECT route FROM perfguard.requests WHERE route LIKE '%/three%' ORDER BY 1")
    with admin.connect() as c:
        c.execute(text('SET perfguard.include_test = on'))
        shown = c.execute(text("SELECT category, count(*) FROM perfguard.findings "
                               "WHERE route = '[test] /three' GROUP BY 1")).fetchall()
    print('test traffic: findings %s, requests %s, with include_test %s' % (hidden, requests, shown))
    # one card per loop (issue 17): the N+1s of the view fold into its cards
    return (hidden == [(0,)] and any(cat.startswith('n_plus_one') for cat, _ in shown)
            and [r[0] for r in requests] == ['[test] /three', '[test] /three-fixed'])


check('test traffic is left out of perfguard.findings, shown with include_test', test_traffic_apart)

passed = sum(results)
failed = len(results) - passed
print('%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
