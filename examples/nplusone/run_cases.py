#!/usr/bin/python3
"""
Run the nplusone port (cases.py) against perfguard with SQLAlchemy 1.4 and
psycopg2, three ways:

  tagged       every statement carries route=<label> and a traceparent of
               its own trace (the SQLAlchemy integration's comment hook,
               integrations/sqlalchemy; for raw psycopg2, the same comment);
               the session works in a transaction, as SQLAlchemy's does
  autocommit   untagged; the engine in AUTOCOMMIT, psycopg2 autocommit
  transaction  untagged; SQLAlchemy's default session (BEGIN ... COMMIT),
               psycopg2 without autocommit

Each case runs on a connection of its own whose application_name is its
label nplusone/<case>/<way> (perfguard's label of an untagged request), after
its fixture was written through another connection; the findings are read
at the end (perfguard_cases.Checker).

    run_cases.py [--mode tagged|autocommit|transaction]... [CASE]...
"""
import argparse
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get('PERFGUARD_ROOT') or os.path.normpath(os.path.join(HERE, '..', '..'))
sys.path[:0] = [HERE, os.path.join(HERE, '..', 'lib'), os.path.join(ROOT, 'integrations', 'sqlalchemy')]

import psycopg2  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

import cases  # noqa: E402
from models import Base  # noqa: E402
from perfguard_cases import Checker, TraceIds  # noqa: E402
from perfguard_sqlalchemy import format_comment, instrument, tagged  # noqa: E402

MODES = ('tagged', 'autocommit', 'transaction')
DBNAME = os.environ.get('PGDATABASE', 'nplusone')

# the application_name of the next connection the engine opens
_next_name = ['nplusone-warmup']
engine = sa.create_engine('postgresql+psycopg2:///%s' % DBNAME, poolclass=NullPool)


@sa.event.listens_for(engine, 'do_connect')
def _name_connection(dialect, conn_rec, cargs, cparams):
    cparams['application_name'] = _next_name[0]


# the comment hook, without static tags: untagged runs send no comment at all
instrument(engine)


class Context:
    """What a case uses: an ORM session, or a psycopg2 connection, for one label and way."""

    def __init__(self, label, mode):
        self.label = label
        self.mode = mode
        self.ids = TraceIds(label)
        self._session = None
        self._pg = None

    def tags(self):
        return {'framework': 'sqlalchemy', 'route': self.label,
                'traceparent': self.ids.traceparent()}

    def session(self):
        if self._session is None:
            bind = engine
            if self.mode == 'autocommit':
                bind = engine.execution_options(isolation_level='AUTOCOMMIT')
            self._session = Session(bind=bind)
        return self._session

    def pg(self):
        if self._pg is None:
            self._pg = psycopg2.connect(dbname=DBNAME, application_name=self.label)
            self._pg.autocommit = self.mode == 'autocommit'
        return self._pg

    def named_cursor(self, conn, name):
        # a server-side cursor outlives the statement only WITH HOLD in autocommit
        return conn.cursor(name, withhold=conn.autocommit)

    def execute(self, cur, sql, params=None):
        """cur.execute(), with the request's sqlcommenter comment when tagged."""
        if self.mode == 'tagged':
            comment = format_comment(self.tags())
            if params is not None:
                comment = comment.replace('%', '%%')
            sql = '%s %s' % (sql, comment)
        cur.execute(sql, params)

    def finish(self):
        if self._session is not None:
            self._session.commit()
            self._session.close()
        if self._pg is not None:
            if not self._pg.autocommit:
                self._pg.commit()
            self._pg.close()

    def abandon(self):
        for closer in (getattr(self._session, 'close', None), getattr(self._pg, 'close', None)):
            if closer is not None:
                try:
                    closer()
                except Exception:
                    pass


def run_case(case, mode, checker, setup):
    label = 'nplusone/%s/%s' % (case.name, mode)
    if mode in case.skip:
        print('# skip %s: %s' % (label, case.skip[mode]))
        return
    error = None
    ctx = Context(label, mode)
    try:
        with setup.cursor() as cur:
            case.fixture(cur)
        _next_name[0] = label
        if mode == 'tagged':
            with tagged(**ctx.tags()):
                case.body(ctx)
                ctx.finish()
        else:
            case.body(ctx)
            ctx.finish()
    except Exception as exc:  # a broken port is a failed case, not a crashed run
        error = '%s: %s' % (type(exc).__name__, exc)
        traceback.print_exc()
        ctx.abandon()
    finally:
        _next_name[0] = 'nplusone-idle'
    checker.expect(label, case.expect, case.kind, error)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--mode', action='append', choices=MODES)
    parser.add_argument('names', nargs='*')
    args = parser.parse_args()
    modes = args.mode or MODES
    known = {c.name for c in cases.CASES}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print('unknown case(s): %s' % ', '.join(unknown))
        return 2
    selected = [c for c in cases.CASES if not args.names or c.name in args.names]

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)   # also the dialect's first-connect queries
    setup = psycopg2.connect(dbname=DBNAME, application_name='nplusone-setup')
    setup.autocommit = True

    checker = Checker('nplusone')
    checker.query('SELECT perfguard.reset()')
    for mode in modes:
        for case in selected:
            run_case(case, mode, checker, setup)
    checker.verify('nplusone/')
    print('# %d cases (%d positive), %d ways'
          % (len(selected), sum(1 for c in selected if c.expect.positive), len(modes)))
    return checker.finish()


if __name__ == '__main__':
    sys.exit(main())
