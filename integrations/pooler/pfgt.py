"""
Shared helpers of the pooler end-to-end drivers (psql_clients.py,
django_clients.py, sa_clients.py; ar_clients.rb does the same in Ruby).

A driver is started by run_e2e.sh with:
    PFGT_PHASE   the phase name (direct, pool1, pool2), part of every route
    PFGT_DIR     the phase directory: ready/go files and manifests
    PFGT_HOST, PFGT_PORT   where the clients connect: pgbouncer
                 (127.0.0.1 and its port) or the cluster's socket directly
    PGUSER, PGDATABASE
It connects its clients and loads whatever the ORM loads on a new connection
(untagged catalog queries), then says ready() and waits for go(): run_e2e.sh
says go once every driver of the phase is ready and request_gap has passed,
so no untagged statement lands in a request of another client.  Then it runs
its requests, closes its connections and writes its manifest: for each route,
what it sent (see Manifest).
"""
import json
import os
import secrets
import sys
import time
import uuid
from urllib.parse import quote

PHASE = os.environ.get('PFGT_PHASE', 'dev')
DIR = os.environ.get('PFGT_DIR', '.')
HOST = os.environ.get('PFGT_HOST', os.environ.get('PGHOST', ''))
PORT = os.environ.get('PFGT_PORT', os.environ.get('PGPORT', '5432'))
USER = os.environ.get('PGUSER', '')
DATABASE = os.environ.get('PGDATABASE', 'postgres')

CLIENTS = int(os.environ.get('PFGT_CLIENTS', '4'))
ROUNDS = int(os.environ.get('PFGT_ROUNDS', '2'))


def trace_id():
    """A W3C trace id: 32 lowercase hex digits, not all zero."""
    return secrets.token_hex(16)


def traceparent(tid):
    """traceparent with a fresh span id, as OpenTelemetry sends per statement."""
    return '00-%s-%s-01' % (tid, secrets.token_hex(8))


def request_id():
    return str(uuid.uuid4())


def encode(value):
    return quote(str(value), safe='').replace("'", "\\'")


def comment(**tags):
    """sqlcommenter comment: keys sorted, keys and values URL-encoded."""
    pairs = ["%s='%s'" % (encode(k), encode(v)) for k, v in sorted(tags.items()) if v]
    return '/*%s*/' % ','.join(pairs)


def route(stack, name):
    return '/%s/%s/%s' % (stack, PHASE, name)


def ready(stack):
    with open(os.path.join(DIR, 'ready.' + stack), 'w') as f:
        f.write(str(os.getpid()))


def wait_go(timeout=300):
    path = os.path.join(DIR, 'go')
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit('no go after %d s' % timeout)
        time.sleep(0.02)


class Manifest:
    """
    What a driver sent, per route (the perfguard label):
      requests   requests sent
      queries    statements per request that perfguard counts (no BEGIN,
                 COMMIT, SET: utilities are not queries)
      n_plus_one repeats of the repeated SELECT per request (distinct
                 parameters each), or None
      duplicate  executions of one identical statement per request, or None
      write_loop executions of the repeated INSERT per request, or None
      ids        True when every statement of the route should carry a
                 request id (traceparent or request_id)
      sizes      optional list of per-request query counts (when they vary)
    A route with no finding expected is a clean twin: nothing may be reported.
    """

    def __init__(self, stack):
        self.stack = stack
        self.routes = {}

    def add(self, route, requests, queries, n_plus_one=None, duplicate=None,
            write_loop=None, ids=True, note=''):
        self.routes[route] = dict(route=route, stack=self.stack, requests=requests,
                                  queries=queries, n_plus_one=n_plus_one,
                                  duplicate=duplicate, write_loop=write_loop,
                                  ids=ids, note=note)

    def write(self):
        path = os.path.join(DIR, 'manifest.%s.json' % self.stack)
        with open(path + '.tmp', 'w') as f:
            json.dump(list(self.routes.values()), f, indent=1)
        os.rename(path + '.tmp', path)
