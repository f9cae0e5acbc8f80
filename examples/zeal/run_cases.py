#!/usr/bin/python3
"""
Run the django-zeal port (cases.py) against perfguard, three ways:

  tagged       each case is a request: every statement carries a
               sqlcommenter comment with route=<label> and a traceparent
               (a new trace id per request, a new span id per statement)
  autocommit   untagged, autocommit (Django's default)
  transaction  untagged, the whole case inside transaction.atomic()

Each case runs on a fresh connection of its own (its application_name is the
label, zeal/<case>/<mode>, which is how perfguard labels untagged requests),
after its fixture was written through another connection; so no case shares
a request with another one or with its fixture, whatever the timing.  The
findings of all cases are read at the end (perfguard_cases.Checker).

    run_cases.py [--mode tagged|autocommit|transaction]... [CASE]...
"""
import argparse
import os
import sys
import traceback
from contextlib import ExitStack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get('PERFGUARD_ROOT') or os.path.normpath(os.path.join(HERE, '..', '..'))
sys.path[:0] = [HERE, os.path.join(HERE, '..', 'lib'), os.path.join(ROOT, 'integrations', 'django')]
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'zealproject.settings')

import django  # noqa: E402

django.setup()

from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from perfguard_cases import Checker, TraceIds  # noqa: E402
from perfguard_django.sqlcommenter import append_comment, format_comment  # noqa: E402

import cases  # noqa: E402
from social.models import Post, Profile, Tag, User  # noqa: E402

MODES = ('tagged', 'autocommit', 'transaction')


class Tagger:
    """execute_wrapper: the sqlcommenter comment of the current request on every statement."""

    def __init__(self, label):
        self.label = label
        self.ids = TraceIds(label)
        self.requests = 0

    def new_request(self):
        self.requests += 1
        self.ids.request(self.requests)

    def __call__(self, execute, sql, params, many, context):
        comment = format_comment({'framework': 'django', 'route': self.label,
                                  'traceparent': self.ids.traceparent()})
        return execute(append_comment(sql, comment, params is not None), params, many, context)


class Context:
    """What a case body may use besides its fixture: web requests."""

    def __init__(self, tagger):
        self.tagger = tagger
        self.client = Client()

    def get(self, path):
        if self.tagger is not None:
            self.tagger.new_request()
        return self.client.get(path)


def run_case(case, mode, checker):
    label = 'zeal/%s/%s' % (case.name, mode)
    error = None
    app = connections['default']
    try:
        fixture = case.fixture()
        if case.expect.ignored:
            checker.ignore_route(label, 'zeal_ignore() in the original test')
        app.close()
        app.settings_dict['OPTIONS']['application_name'] = label
        tagger = Tagger(label) if mode == 'tagged' else None
        with ExitStack() as stack:
            if tagger is not None:
                stack.enter_context(app.execute_wrapper(tagger))
            if mode == 'transaction':
                stack.enter_context(transaction.atomic())
            case.body(fixture, Context(tagger))
    except Exception as exc:  # a broken port is a failed case, not a crashed run
        error = '%s: %s' % (type(exc).__name__, exc)
        traceback.print_exc()
    finally:
        app.close()
        app.settings_dict['OPTIONS']['application_name'] = 'zeal-app'
    checker.expect(label, case.expect, case.kind, error)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--mode', action='append', choices=MODES)
    parser.add_argument('names', nargs='*')
    args = parser.parse_args()
    modes = args.mode or MODES
    selected = [c for c in cases.CASES if not args.names or c.name in args.names]
    if args.names and len(selected) != len(set(args.names)):
        known = {c.name for c in cases.CASES}
        print('unknown case(s): %s' % ', '.join(n for n in args.names if n not in known))
        return 2

    call_command('migrate', database='setup', verbosity=0)
    # ContentType's per-process cache, warm as in an application that served a request
    for model in (User, Profile, Post, Tag):
        ContentType.objects.db_manager('default').get_for_model(model)
    connections['default'].close()

    checker = Checker('zeal')
    checker.query('SELECT perfguard.reset()')
    for mode in modes:
        for case in selected:
            run_case(case, mode, checker)
    checker.verify('zeal/')
    print('# %d cases (%d positive), %d runs each'
          % (len(selected), sum(1 for c in selected if c.expect.positive
                                and not c.expect.ignored), len(modes)))
    return checker.finish()


if __name__ == '__main__':
    sys.exit(main())
