#!/usr/bin/python3
"""
Check the requests of a finished run against its expectations, for suites
whose cases are not written in Python (examples/bullet):

    verify_cases.py RESULTS.json PREFIX

RESULTS.json is a list of {"label", "kind", "error", "expect"} with expect
as {"n_plus_one": {table: [repeats, distinct, fix-or-null]}, "allow": {...},
"dups": {table: max_duplicates}, "sequence_ok": bool, "ignored": bool};
PREFIX is the start of every label of the run.  The checks and the output are
perfguard_cases.Checker's; the last line is "N passed, M failed".
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from perfguard_cases import NP, Checker, Expect  # noqa: E402


def expectation(e):
    def nps(d):
        return {t: NP(v[0], v[1], v[2] if len(v) > 2 else None) for t, v in (d or {}).items()}
    return Expect(n_plus_one=nps(e.get('n_plus_one')), allow=nps(e.get('allow')),
                  dups=e.get('dups') or {}, sequence_ok=bool(e.get('sequence_ok')),
                  ignored=bool(e.get('ignored')))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        results = json.load(f)
    suite = sys.argv[2].strip('/').split('/')[0]
    checker = Checker(suite)
    for r in results:
        checker.expect(r['label'], expectation(r['expect']), r['kind'], r.get('error'))
    checker.verify(sys.argv[2])
    return checker.finish()


if __name__ == '__main__':
    sys.exit(main())
