#!/usr/bin/python3
"""tools/check-layers.py: the layer map of docs/design.md against the code.

Reads the map table of docs/design.md (layer | file | holds | uses) and
checks, for every C file of the tree:
  - it is in the map, and every file in the map exists;
  - every perfguard header it includes belongs to a module of the same or a
    lower layer, and is listed in its "uses" column (or is its own header,
    or perfguard.h, which everyone may include);
  - no .c file is over 1,500 lines, src/perfguard.h is under 150 lines;
  - `nm -D --defined-only perfguard.so` (when built) shows no unprefixed
    global function.
Prints one line per problem and "layers: ok" when there is none; exit 1 on
a problem.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ['bottom', 'store', 'hot path', 'report', 'top']


def module_of(path):
    base = os.path.basename(path)
    return re.sub(r'\.(c|h)$', '', base)


def read_map():
    text = open(os.path.join(ROOT, 'docs', 'design.md')).read()
    mods = {}
    for line in text.splitlines():
        m = re.match(r'^\| (bottom|store|hot path|report|top) \| `([^`]+)` \| .* \| ([^|]*) \|$', line)
        if not m:
            continue
        layer, files, uses = m.group(1), m.group(2), m.group(3)
        name = module_of(files.replace('.c/.h', '.c').split('/')[-1])
        used = set()
        if uses.strip() not in ('—', '-', ''):
            for u in uses.split(','):
                u = u.strip().split(' ')[0]
                if u:
                    used.add(u)
        mods[name] = (layer, used, files)
    return mods


def main():
    problems = []
    mods = read_map()
    if not mods:
        print('layers: no map found in docs/design.md')
        return 1
    cfiles = [os.path.join('src', f) for f in os.listdir(os.path.join(ROOT, 'src'))
              if f.endswith('.c')] + ['perfguard.c']
    for cf in sorted(cfiles):
        name = module_of(cf)
        if name not in mods:
            problems.append('%s: not in the map of docs/design.md' % cf)
            continue
        nlines = sum(1 for _ in open(os.path.join(ROOT, cf)))
        if nlines > 1500:
            problems.append('%s: %d lines, over 1,500' % (cf, nlines))
    for name, (layer, used, files) in mods.items():
        src = os.path.join(ROOT, 'perfguard.c' if name == 'perfguard' else 'src/%s.c' % name)
        if not os.path.exists(src):
            problems.append('%s: in the map but missing' % files)
            continue
        for hdr in ([src] + ([src[:-2] + '.h'] if os.path.exists(src[:-2] + '.h') else [])):
            for inc in re.findall(r'^#include "([a-z_]+)\.h"', open(hdr).read(), re.M):
                if inc in (name, 'perfguard') or \
                        not os.path.exists(os.path.join(ROOT, 'src', inc + '.h')):
                    continue    # its own header, the shared one, or PostgreSQL's
                if inc not in mods:
                    problems.append('%s includes %s.h, which is not in the map' % (hdr[len(ROOT) + 1:], inc))
                    continue
                if name != 'perfguard' and inc not in used:
                    problems.append('%s includes %s.h, not in its "uses"' % (hdr[len(ROOT) + 1:], inc))
                if ORDER.index(mods[inc][0]) > ORDER.index(layer):
                    problems.append('%s (%s) includes %s.h (%s): an upward arrow'
                                    % (hdr[len(ROOT) + 1:], layer, inc, mods[inc][0]))
    nh = sum(1 for _ in open(os.path.join(ROOT, 'src', 'perfguard.h')))
    if nh >= 150:
        problems.append('src/perfguard.h: %d lines, not under 150' % nh)
    so = os.path.join(ROOT, 'perfguard.so')
    if os.path.exists(so):
        out = subprocess.run(['nm', '-D', '--defined-only', so], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == 'T':
                sym = parts[2]
                if not re.match(r'^(pfg_|perfguard_|_PG_init$|Pg_magic_func$|pg_finfo_)', sym):
                    problems.append('perfguard.so exports %s without the pfg_/perfguard_ prefix' % sym)
    for p in problems:
        print(p)
    if problems:
        print('layers: %d problem(s)' % len(problems))
        return 1
    print('layers: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
