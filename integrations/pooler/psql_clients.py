"""
psql clients with tagged requests (driver of run_e2e.sh; see pfgt.py).

PFGT_CLIENTS (4) psql processes run at once, each a script of requests in
autocommit, every statement tagged with its route and a traceparent whose
trace id is unique per request (a fresh span id per statement), or with a
request_id tag instead of traceparent.  Per client and round (PFGT_ROUNDS,
here default 3), in an order that differs per client:
  books       a list query and 30 lookups by id: an N+1 of 30 (31 queries)
  books-rid   the same, identified by request_id instead of traceparent
  clean       its twin with a JOIN, and a count (2 queries, no finding)
  dup         a list query and the same lookup 4 times: a duplicate of 4
and once per client
  write       300 single-row INSERTs: a write loop of 300
Two more clients each run ten requests of one fixed, clean page (3 queries)
back to back on one connection with no pause, one with traceparent
(b2b-tp), one with request_id (b2b-rid): ten requests, no finding.
"""
import os
import subprocess
import sys

import pfgt

STACK = 'psql'
ROUNDS = int(os.environ.get('PFGT_PSQL_ROUNDS', '3'))
LOOKUPS = 30
DUP_EXECUTIONS = 4
WRITES = 300
B2B = 10


class Script:
    def __init__(self):
        self.lines = []

    def request(self, route, statements, key='traceparent'):
        tid = pfgt.trace_id()
        rid = pfgt.request_id()
        for sql in statements:
            if key == 'traceparent':
                c = pfgt.comment(route=route, traceparent=pfgt.traceparent(tid))
            else:
                c = pfgt.comment(route=route, request_id=rid)
            self.lines.append('%s %s;' % (sql, c))


def books():
    return (['SELECT id, author_id FROM pf_book ORDER BY id LIMIT %d' % LOOKUPS] +
            ['SELECT name FROM pf_author WHERE id = %d' % k for k in range(1, LOOKUPS + 1)])


def clean():
    return ['SELECT b.id, b.title, a.name FROM pf_book b JOIN pf_author a ON a.id = b.author_id ORDER BY b.id',
            'SELECT count(*) FROM pf_tag']


def dup():
    return (['SELECT id, author_id FROM pf_book ORDER BY id LIMIT 5'] +
            ['SELECT name FROM pf_author WHERE id = 7'] * DUP_EXECUTIONS)


def write(client):
    return ["INSERT INTO pf_hit (route, n) VALUES ('psql-%d', %d)" % (client, k)
            for k in range(WRITES)]


def page():
    return ['SELECT count(*) FROM pf_author',
            'SELECT b.id, a.name FROM pf_book b JOIN pf_author a ON a.id = b.author_id ORDER BY b.id LIMIT 10',
            'SELECT id, name FROM pf_tag ORDER BY id']


def main():
    r = {name: pfgt.route(STACK, name) for name in
         ('books', 'books-rid', 'clean', 'dup', 'write', 'b2b-tp', 'b2b-rid')}
    scripts = []
    for client in range(pfgt.CLIENTS):
        s = Script()
        kinds = ['books', 'clean', 'dup', 'books-rid']
        for rnd in range(ROUNDS):
            k = (client + rnd) % len(kinds)
            for kind in kinds[k:] + kinds[:k]:
                if kind == 'books':
                    s.request(r[kind], books())
                elif kind == 'books-rid':
                    s.request(r[kind], books(), key='request_id')
                elif kind == 'clean':
                    s.request(r[kind], clean())
                else:
                    s.request(r[kind], dup())
            if rnd == client % ROUNDS:
                s.request(r['write'], write(client))
        scripts.append(s)
    s = Script()
    for _ in range(B2B):
        s.request(r['b2b-tp'], page())
    scripts.append(s)
    s = Script()
    for _ in range(B2B):
        s.request(r['b2b-rid'], page(), key='request_id')
    scripts.append(s)

    files = []
    for i, s in enumerate(scripts):
        path = os.path.join(pfgt.DIR, 'psql-client-%d.sql' % i)
        with open(path, 'w') as f:
            f.write('\n'.join(s.lines) + '\n')
        files.append(path)

    pfgt.ready(STACK)
    pfgt.wait_go()
    procs = []
    for path in files:
        err = open(path + '.err', 'w')
        procs.append((path, err, subprocess.Popen(
            [os.environ.get('PFGT_PSQL', 'psql'), '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', pfgt.HOST, '-p', pfgt.PORT,
             '-U', pfgt.USER, '-d', pfgt.DATABASE, '-f', path, '-o', '/dev/null'],
            stdout=subprocess.DEVNULL, stderr=err)))
    failed = 0
    for path, err, p in procs:
        rc = p.wait()
        err.close()
        if rc != 0:
            failed += 1
            with open(path + '.err') as f:
                print('psql %s exited %d: %s' % (os.path.basename(path), rc, f.read()[-2000:]),
                      file=sys.stderr)

    m = pfgt.Manifest(STACK)
    n = pfgt.CLIENTS * ROUNDS
    m.add(r['books'], n, LOOKUPS + 1, n_plus_one=LOOKUPS)
    m.add(r['books-rid'], n, LOOKUPS + 1, n_plus_one=LOOKUPS, note='request_id')
    m.add(r['clean'], n, 2)
    m.add(r['dup'], n, DUP_EXECUTIONS + 1, duplicate=DUP_EXECUTIONS)
    m.add(r['write'], pfgt.CLIENTS, WRITES, write_loop=WRITES)
    m.add(r['b2b-tp'], B2B, 3, note='back to back, traceparent')
    m.add(r['b2b-rid'], B2B, 3, note='back to back, request_id')
    m.write()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
