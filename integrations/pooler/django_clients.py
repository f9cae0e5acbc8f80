"""
Django 3.2 clients (driver of run_e2e.sh; see pfgt.py).

The site in django_site/ uses integrations/django's perfguard_django
middleware with its defaults and CONN_MAX_AGE = 60.  PFGT_CLIENTS (4)
threads, each with its own Django test Client and its own persistent
connection, GET each view of pooler_app (an FK N+1, a many-to-many N+1, a
write loop of 50 INSERTs in autocommit, a duplicate, and their clean twins)
PFGT_ROUNDS (2) times, in an order that differs per thread, so two requests
in a row on one thread never have the same route.  One more thread GETs a
clean page (3 queries) ten times back to back on its persistent connection,
with no pause: ten requests, no finding (the second half of issue 15).
"""
import os
import sys
import threading
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, 'django_site'),
                os.path.join(HERE, '..', 'django')]
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'pooler_site.settings')

import django  # noqa: E402

import pfgt  # noqa: E402

STACK = 'django'
B2B = 10
VIEWS = ['books-bad', 'books-good', 'tags-bad', 'tags-good',
         'write-bad', 'write-good', 'dup-bad', 'dup-good']


def main():
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from pooler_app.views import QUERIES

    errors = []
    n_threads = pfgt.CLIENTS + 1
    warm = threading.Barrier(n_threads + 1)
    go = threading.Barrier(n_threads + 1)

    def get(client, name):
        response = client.get(reverse(name))
        if response.status_code != 200:
            raise RuntimeError('%s: HTTP %d' % (name, response.status_code))

    def worker(index):
        try:
            client = Client()
            connection.ensure_connection()
            warm.wait()
            go.wait()
            if index < pfgt.CLIENTS:
                for rnd in range(pfgt.ROUNDS):
                    k = (index + rnd) % len(VIEWS)
                    for name in VIEWS[k:] + VIEWS[:k]:
                        get(client, name)
            else:
                for _ in range(B2B):
                    get(client, 'page')
        except BaseException:
            errors.append(traceback.format_exc())
            for b in (warm, go):
                b.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
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
    for e in errors:
        print(e, file=sys.stderr)

    m = pfgt.Manifest(STACK)
    prefix = 'django/%s/' % pfgt.PHASE
    for name in VIEWS:
        q, np, dup, wl = QUERIES[name]
        m.add(prefix + name.replace('-', '/') + '/', pfgt.CLIENTS * pfgt.ROUNDS, q,
              n_plus_one=np, duplicate=dup, write_loop=wl)
    q, np, dup, wl = QUERIES['page']
    m.add(prefix + 'page/', B2B, q, note='ten back to back on one persistent connection')
    m.write()
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
