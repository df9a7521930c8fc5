#!/usr/bin/env python3
"""Re-run the suite in promtool 2.42 with Prometheus 3.x window membership.

Prometheus 3.x selects samples in (t - range, t] (and looks back over (t - 5m, t]);
2.42 uses [t - range, t]. Shifting every selector by `offset -1ms` makes 2.42 pick
exactly the 3.x samples at every evaluation, on and off the sample grid:
[t + 1ms - range, t + 1ms] holds the sample at t but not the one at t - range.
Rate extrapolation also comes out the same up to float rounding, because the
millisecond moves from the start gap to the end gap.

This script rewrites every rule file that way, points copies of the test files at
the rewritten rules, drops the promql_expr_test blocks (their exact float values can
differ in the last bits after the shift), and runs `promtool test rules`
on them (negative offsets are stable in 2.42). When all alert tests still pass,
the alert timelines do not depend on the closed/open choice at the window's left
edge.

usage: left-open-emulation.py [TEST_FILE...]   (default: every *.test.yml here)
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "atan2",
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "group",
}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000, "y": 31536000000}


def duration_ms(text):
    return sum(int(n) * UNIT_MS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


def skip_ws(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def skip_string(s, i):
    quote = s[i]
    i += 1
    while s[i] != quote:
        if s[i] == "\\" and quote != "`":
            i += 1
        i += 1
    return i + 1


def skip_braces(s, i, open_c, close_c):
    depth = 0
    while True:
        c = s[i]
        if c in "\"'`":
            i = skip_string(s, i)
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def shift_selectors(expr):
    """Append `offset -1ms` to every vector selector (existing offsets are reduced by 1ms)."""
    out = []
    i = 0
    n = len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = skip_string(expr, i)
            out.append(expr[i:j])
            i = j
            continue
        if c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = re.compile(r"(\d+(ms|s|m|h|d|w|y))+|0x[0-9a-fA-F]+|\d*\.?\d+([eE][+-]?\d+)?").match(expr, i)
            out.append(m.group(0))
            i = m.end()
            continue
        if c.isalpha() or c == "_" or c == "{":
            if c == "{":
                name = ""
                j = i
            else:
                m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_:]*").match(expr, i)
                name = m.group(0)
                j = m.end()
            k = skip_ws(expr, j)
            if name:
                if name.lower() in LABEL_LIST_KEYWORDS:
                    out.append(expr[i:k])
                    if k < n and expr[k] == "(":
                        e = skip_braces(expr, k, "(", ")")
                        out.append(expr[k:e])
                        i = e
                    else:
                        i = k
                    continue
                if name.lower() in KEYWORDS or (k < n and expr[k] == "("):
                    out.append(expr[i:j])
                    i = j
                    continue
            # A vector selector: name, optional {matchers}, optional [range], optional offset.
            end = j
            k = skip_ws(expr, end)
            if k < n and expr[k] == "{":
                end = skip_braces(expr, k, "{", "}")
            k = skip_ws(expr, end)
            if k < n and expr[k] == "[":
                close = skip_braces(expr, k, "[", "]")
                if ":" in expr[k:close]:
                    raise SystemExit("subquery directly on a selector is not supported: " + expr)
                end = close
            selector = expr[i:end]
            k = skip_ws(expr, end)
            m = re.compile(r"offset\s+(-?)((\d+(ms|s|m|h|d|w|y))+)").match(expr, k)
            if m:
                ms = duration_ms(m.group(2)) * (-1 if m.group(1) else 1) - 1
                out.append("%s offset %dms" % (selector, ms))
                i = m.end()
            else:
                out.append(selector + " offset -1ms")
                i = end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def main(tests):
    tmp = tempfile.mkdtemp(prefix="left-open-")
    rewritten = {}
    failed = False
    for test in tests:
        doc = yaml.safe_load(open(test))
        rule_files = []
        for rf in doc["rule_files"]:
            src = os.path.join(os.path.dirname(os.path.abspath(test)), rf)
            if src not in rewritten:
                rules = yaml.safe_load(open(src))
                for group in rules["groups"]:
                    for rule in group["rules"]:
                        rule["expr"] = shift_selectors(str(rule["expr"]))
                dst = os.path.join(tmp, os.path.basename(src))
                with open(dst, "w") as f:
                    yaml.safe_dump(rules, f, sort_keys=False)
                rewritten[src] = dst
            rule_files.append(rewritten[src])
        doc["rule_files"] = rule_files
        for group in doc["tests"]:
            group.pop("promql_expr_test", None)
        dst = os.path.join(tmp, os.path.basename(test))
        with open(dst, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        res = subprocess.run(
            ["promtool", "test", "rules", dst],
            capture_output=True, text=True)
        verdict = "ok" if res.returncode == 0 else "FAILED"
        print("left-open %-40s %s" % (os.path.basename(test), verdict))
        if res.returncode != 0:
            failed = True
            print(res.stdout + res.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "*.test.yml")))
    sys.exit(main(files))
