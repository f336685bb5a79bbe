#!/usr/bin/env python3
"""Checks Prometheus text exposition (version 0.0.4) from stdin the way
`promtool check metrics` does for what mseg emits: syntax of every line,
HELP and TYPE before the samples of a family, one TYPE per family, counters
named *_total, no duplicate series, float values. Exit 1 with messages."""
import re
import sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r'^(%s)(\{(?:%s)(?:,(?:%s))*\})? ([^ ]+)( -?\d+)?$' % (NAME, LABEL, LABEL))
errors = []
types, helps, seen = {}, set(), set()
for n, line in enumerate(sys.stdin.read().split('\n'), 1):
    if not line:
        continue
    if line.startswith('# HELP '):
        parts = line.split(' ', 3)
        if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
            errors.append('%d: bad HELP' % n)
        elif parts[2] in helps:
            errors.append('%d: second HELP for %s' % (n, parts[2]))
        else:
            helps.add(parts[2])
        continue
    if line.startswith('# TYPE '):
        parts = line.split(' ')
        if len(parts) != 4 or parts[3] not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
            errors.append('%d: bad TYPE' % n)
        elif parts[2] in types:
            errors.append('%d: second TYPE for %s' % (n, parts[2]))
        else:
            types[parts[2]] = parts[3]
            if parts[3] == 'counter' and not parts[2].endswith('_total'):
                errors.append('%d: counter %s should end in _total' % (n, parts[2]))
        continue
    if line.startswith('#'):
        continue
    m = SAMPLE.match(line)
    if not m:
        errors.append('%d: not a sample: %r' % (n, line))
        continue
    name, labels, value = m.group(1), m.group(2) or '', m.group(3)
    if name not in types:
        errors.append('%d: %s has no TYPE before it' % (n, name))
    if name not in helps:
        errors.append('%d: %s has no HELP' % (n, name))
    try:
        float(value)
    except ValueError:
        errors.append('%d: value %r' % (n, value))
    if (name, labels) in seen:
        errors.append('%d: duplicate series %s%s' % (n, name, labels))
    seen.add((name, labels))
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
