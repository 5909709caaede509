#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A strict check of the Prometheus text exposition format (0.0.4), as
# node_exporter's textfile collector reads it: HELP/TYPE before a family's
# samples, one block per family, names and labels by the grammar, escapes,
# float values, no duplicate series, histograms whole (cumulative buckets,
# +Inf equal to _count, _sum present). Exit 1 with the offending line.
import math
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*$')
TYPES = {'counter', 'gauge', 'histogram', 'summary', 'untyped'}


def fail(n, line, why):
    print('promcheck: line %d: %s: %r' % (n, why, line), file=sys.stderr)
    sys.exit(1)


def parse_labels(n, line, s):
    """s starts after '{'; return (labels, rest after '}')."""
    labels = {}
    i = 0
    while True:
        if s[i:i + 1] == '}':
            return labels, s[i + 1:]
        m = re.match(r'([a-zA-Z_][a-zA-Z0-9_]*)="', s[i:])
        if not m:
            fail(n, line, 'bad label')
        key = m.group(1)
        i += m.end()
        val = ''
        while True:
            if i >= len(s):
                fail(n, line, 'unterminated label value')
            c = s[i]
            if c == '\\':
                e = s[i + 1:i + 2]
                if e not in ('\\', '"', 'n'):
                    fail(n, line, 'bad escape')
                val += {'\\': '\\', '"': '"', 'n': '\n'}[e]
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == '\n':
                fail(n, line, 'raw newline in label')
            else:
                val += c
                i += 1
        if key in labels:
            fail(n, line, 'duplicate label')
        labels[key] = val
        if s[i:i + 1] == ',':
            i += 1
        elif s[i:i + 1] != '}':
            fail(n, line, 'expected , or }')


def value(n, line, v):
    if v in ('+Inf', '-Inf', 'NaN'):
        return float(v.replace('Inf', 'inf'))
    if not re.match(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$', v):
        fail(n, line, 'bad value')
    return float(v)


def main(path):
    data = open(path, 'rb').read().decode('utf-8')
    if not data.endswith('\n'):
        fail(0, '', 'no final newline')
    types, helps, done, series = {}, {}, set(), set()
    hist = {}
    current = None
    samples = 0
    for n, line in enumerate(data.split('\n')[:-1], 1):
        if line.startswith('#'):
            parts = line.split(' ', 3)
            if len(parts) >= 3 and parts[1] in ('HELP', 'TYPE'):
                name = parts[2]
                if not NAME.match(name):
                    fail(n, line, 'bad metric name')
                if name in done:
                    fail(n, line, 'family appears twice')
                if parts[1] == 'TYPE':
                    if len(parts) != 4 or parts[3] not in TYPES:
                        fail(n, line, 'bad TYPE')
                    if name in types:
                        fail(n, line, 'second TYPE')
                    types[name] = parts[3]
                else:
                    if name in helps:
                        fail(n, line, 'second HELP')
                    helps[name] = parts[3] if len(parts) == 4 else ''
                if current and current != name:
                    done.add(current)
                current = name
            continue
        if not line.strip():
            fail(n, line, 'empty line')
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)', line)
        if not m:
            fail(n, line, 'bad sample name')
        name, rest = m.group(1), line[m.end():]
        labels = {}
        if rest.startswith('{'):
            labels, rest = parse_labels(n, line, rest[1:])
        if not rest.startswith(' '):
            fail(n, line, 'no space before the value')
        fields = rest[1:].split(' ')
        if len(fields) not in (1, 2):
            fail(n, line, 'bad value/timestamp')
        v = value(n, line, fields[0])
        fam = name
        for suf in ('_bucket', '_sum', '_count'):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == 'histogram':
                fam = name[:-len(suf)]
        if fam not in types:
            fail(n, line, 'sample before its TYPE')
        if fam != current:
            fail(n, line, 'sample outside its family block')
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            fail(n, line, 'duplicate series')
        series.add(key)
        if types[fam] == 'counter' and (v < 0 or math.isnan(v)):
            fail(n, line, 'negative counter')
        if types[fam] == 'counter' and not name.endswith('_total'):
            fail(n, line, 'counter without _total')
        if types[fam] == 'histogram':
            base = tuple(sorted((k, x) for k, x in labels.items() if k != 'le'))
            h = hist.setdefault((fam, base), {'b': [], 'sum': None, 'count': None})
            if name.endswith('_bucket'):
                if 'le' not in labels:
                    fail(n, line, 'bucket without le')
                h['b'].append((value(n, line, labels['le']), v))
            elif name.endswith('_sum'):
                h['sum'] = v
            elif name.endswith('_count'):
                h['count'] = v
            else:
                fail(n, line, 'bare histogram sample')
        samples += 1
    for (fam, base), h in hist.items():
        les = [b[0] for b in h['b']]
        if les != sorted(les) or not les or les[-1] != math.inf:
            fail(0, fam, 'buckets not ascending to +Inf')
        cums = [b[1] for b in h['b']]
        if cums != sorted(cums):
            fail(0, fam, 'buckets not cumulative')
        if h['count'] is None or h['sum'] is None or cums[-1] != h['count']:
            fail(0, fam, '+Inf bucket != _count, or no _sum')
    if not samples:
        fail(0, '', 'no samples')
    print('promcheck: %d samples in %d families, %d histograms' %
          (samples, len(types), len(hist)))


main(sys.argv[1])
