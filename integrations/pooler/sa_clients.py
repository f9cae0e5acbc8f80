"""
SQLAlchemy 1.4 clients (driver of run_e2e.sh; see pfgt.py).

Debian's python3-sqlalchemy and python3-psycopg2, the comment hook of
integrations/sqlalchemy/perfguard_sqlalchemy.py (instrument(), one
tagged(route=...) block per request).  PFGT_CLIENTS (4) threads, PFGT_ROUNDS
(2) rounds, each request its own Session:

in autocommit (isolation_level='AUTOCOMMIT'):
  ac-lazy     books, then each book's author lazily: an N+1 of 30 (31 queries)
  ac-joined   joinedload: 1 query, no finding
  ac-write    20 objects, one flush each: a write loop of 20
  ac-bulk     one executemany INSERT of 20 rows: 1 query, no finding
in transactions (psycopg2's implicit BEGIN, commit at the end):
  tx-lazy     the same N+1 spread over two transactions: 15 authors, COMMIT,
              15 more (through the pooler, possibly on two backends)
  tx-joined   joinedload in one transaction: no finding
  tx-write    20 flushes in one transaction: a write loop of 20
  tx-dup      a list and the same text() lookup three times: a duplicate of 3
  tx-dup-clean  a list and one lookup: no finding
"""
import os
import sys
import threading
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, '..', 'sqlalchemy')]

from sqlalchemy import Column, ForeignKey, Integer, Text, create_engine, insert, text  # noqa: E402
from sqlalchemy.orm import Session, declarative_base, joinedload, relationship  # noqa: E402

import pfgt  # noqa: E402
from perfguard_sqlalchemy import instrument, tagged  # noqa: E402

STACK = 'sqlalchemy'
LOOKUPS = 30
WRITES = 20

Base = declarative_base()


class Author(Base):
    __tablename__ = 'pf_author'
    id = Column(Integer, primary_key=True)
    name = Column(Text, nullable=False)


class Book(Base):
    __tablename__ = 'pf_book'
    id = Column(Integer, primary_key=True)
    author_id = Column(Integer, ForeignKey('pf_author.id'), nullable=False)
    title = Column(Text, nullable=False)
    author = relationship(Author, lazy='select')


class Hit(Base):
    __tablename__ = 'pf_hit'
    id = Column(Integer, primary_key=True)
    route = Column(Text, nullable=False)
    n = Column(Integer, nullable=False)


def url():
    return 'postgresql+psycopg2://%s@/%s?host=%s&port=%s' % (
        pfgt.USER, pfgt.DATABASE, pfgt.HOST, pfgt.PORT)


size = pfgt.CLIENTS + 1
autocommit = create_engine(url(), future=True, isolation_level='AUTOCOMMIT',
                           pool_size=size, max_overflow=0)
transactional = create_engine(url(), future=True, pool_size=size, max_overflow=0)
for e in (autocommit, transactional):
    instrument(e, framework='sqlalchemy')

# name -> (engine, queries per request, n_plus_one, duplicate, write_loop)
KINDS = {
    'ac-lazy': (autocommit, LOOKUPS + 1, LOOKUPS, None, None),
    'ac-joined': (autocommit, 1, None, None, None),
    'ac-write': (autocommit, WRITES, None, None, WRITES),
    'ac-bulk': (autocommit, 1, None, None, None),
    'tx-lazy': (transactional, LOOKUPS + 1, LOOKUPS, None, None),
    'tx-joined': (transactional, 1, None, None, None),
    'tx-write': (transactional, WRITES, None, None, WRITES),
    'tx-dup': (transactional, 4, None, 3, None),
    'tx-dup-clean': (transactional, 2, None, None, None),
}


def page(kind):
    engine = KINDS[kind][0]
    with Session(engine, expire_on_commit=False) as s:
        if kind in ('ac-lazy', 'tx-lazy'):
            books = s.query(Book).order_by(Book.id).all()
            names = [b.author.name for b in books[:LOOKUPS // 2]]
            if kind == 'tx-lazy':
                s.commit()
            names += [b.author.name for b in books[LOOKUPS // 2:]]
        elif kind in ('ac-joined', 'tx-joined'):
            names = [b.author.name for b in
                     s.query(Book).options(joinedload(Book.author)).order_by(Book.id)]
        elif kind in ('ac-write', 'tx-write'):
            for k in range(WRITES):
                s.add(Hit(route='sqlalchemy', n=k))
                s.flush()
        elif kind == 'ac-bulk':
            s.execute(insert(Hit), [{'route': 'sqlalchemy', 'n': k} for k in range(WRITES)])
        elif kind == 'tx-dup':
            s.execute(text('SELECT id, author_id FROM pf_book ORDER BY id LIMIT 5')).fetchall()
            for _ in range(3):
                s.execute(text('SELECT name FROM pf_author WHERE id = :i'), {'i': 7}).scalar()
        elif kind == 'tx-dup-clean':
            s.execute(text('SELECT id, author_id FROM pf_book ORDER BY id LIMIT 5')).fetchall()
            s.execute(text('SELECT name FROM pf_author WHERE id = :i'), {'i': 7}).scalar()
        s.commit()


def route(kind):
    return pfgt.route(STACK, kind)


def request(kind):
    with tagged(route=route(kind), controller='pooler.%s' % kind):
        page(kind)


def main():
    errors = []
    kinds = list(KINDS)
    warm = threading.Barrier(pfgt.CLIENTS + 1)
    go = threading.Barrier(pfgt.CLIENTS + 1)

    def worker(index):
        try:
            # every page once, untagged: each thread's connections of both
            # engines are opened (psycopg2's hstore probe, the dialect's
            # first-connect queries) and every statement compiled before
            # the phase starts
            for kind in kinds:
                page(kind)
            warm.wait()
            go.wait()
            for rnd in range(pfgt.ROUNDS):
                k = (index + rnd) % len(kinds)
                for kind in kinds[k:] + kinds[:k]:
                    request(kind)
        except BaseException:
            errors.append(traceback.format_exc())
            for b in (warm, go):
                b.abort()

    # open the pools' connections at once, so none is opened in the phase
    conns = [e.connect() for e in (autocommit, transactional) for _ in range(pfgt.CLIENTS)]
    for c in conns:
        c.close()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(pfgt.CLIENTS)]
    for t in threads:
        t.start()
    try:
        warm.wait()
        pfgt.ready(STACK)
        pfgt.wait_go()
        go.wait()
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join()
    for e in (autocommit, transactional):
        e.dispose()
    for e in errors:
        print(e, file=sys.stderr)

    m = pfgt.Manifest(STACK)
    for kind, (_, q, np, dup, wl) in KINDS.items():
        m.add(route(kind), pfgt.CLIENTS * pfgt.ROUNDS, q, n_plus_one=np, duplicate=dup,
              write_loop=wl, note='transactions' if kind.startswith('tx') else 'autocommit')
    m.write()
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
