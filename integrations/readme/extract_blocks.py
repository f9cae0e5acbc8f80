#!/usr/bin/python3
"""
extract_blocks.py README.md OUTDIR: the fenced code blocks of a Markdown file,
for integrations/readme/run_e2e.sh.

Writes each block to OUTDIR/NNN.<lang> and prints one manifest line per
block, tab-separated:

    index  lang  line  section  file  skip_reason

lang is the fence's info string (sql, sh, python, text, ...), or
"unlabelled" when it has none; line is the line of the opening fence;
section is the "## " heading the block is under.  A block right after an
HTML comment

    <!-- readme-test: skip: <reason> -->

(blank lines in between allowed) has that reason in skip_reason; a marker
without a reason, or one that is not followed by a block, is reported as a
block of lang "bad-marker".  An unclosed fence is reported as
"unclosed".  Exit status 0, or 2 on bad usage.
"""
import os
import re
import sys

FENCE = re.compile(r'^(```+|~~~+)\s*([^\s`]*)\s*$')
MARKER = re.compile(r'^\s*<!--\s*readme-test:\s*(.*?)\s*-->\s*$')


def main(argv):
    if len(argv) != 3:
        print('usage: extract_blocks.py README.md OUTDIR', file=sys.stderr)
        return 2
    path, outdir = argv[1], argv[2]
    os.makedirs(outdir, exist_ok=True)
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')

    rows = []
    section = '(top)'
    pending = None          # (line, reason) of a marker waiting for its block
    fence = None            # (marker chars, lang, line, body) of the open block
    for number, line in enumerate(lines, 1):
        if fence is not None:
            if line.strip() == fence[0]:
                rows.append((fence[1], fence[2], section, '\n'.join(fence[3]) + '\n', fence[4]))
                fence = None
            else:
                fence[3].append(line)
            continue
        m = FENCE.match(line)
        if m:
            reason = ''
            if pending is not None:
                reason = pending[1]
                pending = None
            fence = (m.group(1), m.group(2) or 'unlabelled', number, [], reason)
            continue
        m = MARKER.match(line)
        if m:
            if pending is not None:
                rows.append(('bad-marker', pending[0], section, '', 'marker not followed by a block'))
            directive = m.group(1)
            sm = re.match(r'^skip\s*:\s*(\S.*)$', directive)
            if sm:
                pending = (number, sm.group(1))
            else:
                rows.append(('bad-marker', number, section, '',
                             'expected <!-- readme-test: skip: <reason> -->, got %r' % directive))
            continue
        if line.startswith('## '):
            section = line[3:].strip()
        if pending is not None and line.strip():
            rows.append(('bad-marker', pending[0], section, '', 'marker not followed by a block'))
            pending = None
    if fence is not None:
        rows.append(('unclosed', fence[2], section, '', 'the block never closes'))
    if pending is not None:
        rows.append(('bad-marker', pending[0], section, '', 'marker not followed by a block'))

    for index, (lang, line, sect, body, reason) in enumerate(rows, 1):
        name = os.path.join(outdir, '%03d.%s' % (index, re.sub(r'[^a-z0-9_-]', '_', lang.lower())))
        with open(name, 'w', encoding='utf-8') as f:
            f.write(body)
        print('\t'.join([str(index), lang, str(line), sect.replace('\t', ' '), name,
                         reason.replace('\t', ' ')]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
