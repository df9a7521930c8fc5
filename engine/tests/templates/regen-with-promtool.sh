#!/usr/bin/env bash
# Checks (or, with --update, rewrites) the expected outputs in cases.tsv
# against a real Prometheus: `promtool test rules` expands each "expand" row
# as an alert annotation, `promtool check rules` parses each "check" row.
#
#   engine/tests/templates/regen-with-promtool.sh            # verify, exit 1 on a difference
#   engine/tests/templates/regen-with-promtool.sh --update   # rewrite the expected column
#
# Only rows marked "2.42" are run: the installed promtool is Prometheus 2.42
# (Go 1.19). Rows marked "3.x" cover behaviour that changed since (new
# functions, Go's newer text/template and fmt); their expectations come from
# the Prometheus 3.x and Go sources and this script leaves them alone.
#
# Environment: PROMTOOL (default: promtool on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CASES="$here/cases.tsv"
export PROMTOOL="${PROMTOOL:-promtool}"
export UPDATE=0
if [[ "${1:-}" == "--update" ]]; then UPDATE=1; fi
if ! command -v "$PROMTOOL" >/dev/null; then
  echo "promtool not found (set PROMTOOL to its path)" >&2
  exit 2
fi

exec python3 - <<'PYTHON'
import json, os, re, subprocess, sys, tempfile

CASES = os.environ["CASES"]
PROMTOOL = os.environ["PROMTOOL"]
UPDATE = os.environ["UPDATE"] == "1"

# Keep in step with engine/tests/templates.rs.
DEFAULT_LABELS = '{instance="host.example.com:9090",job="node"}'
EXTERNAL_LABELS = {"region": "eu", "cluster": "c1"}
EXTERNAL_URL = "http://prom.example.com:9090/prefix"


def go_quote(s):
    """Go's strconv.Quote, for the error texts promtool prints unquoted."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x80:
            out.append("\\x%02x" % o)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def go_unquote(q):
    """The inverse of go_quote for the strings in cases.tsv."""
    assert q.startswith('"') and q.endswith('"'), q
    body, out, i = q[1:-1], [], 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2:i + 2 + n], 16)))
            i += 2 + n
        else:
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
    return "".join(out)


def yaml_str(s):
    # A JSON string is a YAML double-quoted scalar, once the characters YAML
    # reads as line breaks are escaped too.
    j = json.dumps(s, ensure_ascii=False)
    for ch in ("\u0085", "\u2028", "\u2029", "\ufeff"):
        j = j.replace(ch, "\\u%04x" % ord(ch))
    return j


lines = open(CASES, encoding="utf-8").read().split("\n")
rows, series = [], []
for n, line in enumerate(lines):
    if not line or line.startswith("#"):
        continue
    cols = line.split("\t")
    if cols[0] == "@series":
        series.append((cols[1], cols[2]))
        continue
    kind, ver, name, labels, value, template, expected = cols
    rows.append(dict(line=n, kind=kind, ver=ver, name=name, labels=labels, value=value,
                     template=go_unquote(template), expected=expected))

names = [r["name"] for r in rows]
dups = {x for x in names if names.count(x) > 1}
if dups:
    sys.exit("duplicate case names: %s" % ", ".join(sorted(dups)))

work = tempfile.mkdtemp(prefix="tocsin-templates-")
got = {}

# Expansion: one alert per row, fired at t=0 by its own series.
expand_rows = [r for r in rows if r["kind"] == "expand" and r["ver"] == "2.42"]
if expand_rows:
    with open(os.path.join(work, "rules.yml"), "w", encoding="utf-8") as f:
        f.write("groups:\n- name: cases\n  rules:\n")
        for r in expand_rows:
            f.write("  - alert: %s\n    expr: tc_%s * 1\n    annotations:\n      a: %s\n"
                    % (r["name"], r["name"], yaml_str(r["template"])))
    with open(os.path.join(work, "test.yml"), "w", encoding="utf-8") as f:
        f.write("rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n")
        f.write("  external_labels: %s\n" % json.dumps(EXTERNAL_LABELS))
        f.write("  external_url: %s\n" % EXTERNAL_URL)
        f.write("  input_series:\n")
        for sel, val in series:
            f.write("  - series: %s\n    values: %s\n" % (yaml_str(sel), yaml_str(val)))
        for r in expand_rows:
            labels = DEFAULT_LABELS if r["labels"] == "-" else r["labels"]
            f.write("  - series: %s\n    values: %s\n" % (yaml_str("tc_" + r["name"] + labels), yaml_str(r["value"])))
        f.write("  alert_rule_test:\n")
        for r in expand_rows:
            # A deliberately wrong expectation makes promtool print what it got.
            f.write("  - {eval_time: 0m, alertname: %s, exp_alerts: [{exp_labels: {tocsin: expected}}]}\n" % r["name"])
    out = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=work, capture_output=True, text=True)
    text = out.stdout + out.stderr
    blocks = re.split(r"\n\s*alertname: ", text)
    for block in blocks[1:]:
        name = block.split(",", 1)[0]
        m = re.search(r"got:\[\s*0:\s*Labels:\{.*?\}\s*Annotations:\{a=(\"(?:[^\"\\]|\\.)*\")\}", block, re.S)
        got[name] = m.group(1) if m else None
    missing = [r["name"] for r in expand_rows if r["name"] not in got]
    if missing:
        sys.exit("promtool reported nothing for %s; its output:\n%s" % (", ".join(missing), text[:4000]))

# Parsing: one alert per row; promtool check rules prints each template error.
check_rows = [r for r in rows if r["kind"] == "check" and r["ver"] == "2.42"]
if check_rows:
    with open(os.path.join(work, "check.yml"), "w", encoding="utf-8") as f:
        f.write("groups:\n- name: cases\n  rules:\n")
        for r in check_rows:
            f.write("  - alert: %s\n    expr: up\n    annotations:\n      a: %s\n" % (r["name"], yaml_str(r["template"])))
    out = subprocess.run([PROMTOOL, "check", "rules", "check.yml"], cwd=work, capture_output=True, text=True)
    errors = {}
    for line in (out.stdout + out.stderr).split("\n"):
        m = re.match(r'.*?: group "cases", rule \d+, "([^"]+)": annotation "a": (.*)$', line)
        if m:
            errors[m.group(1)] = m.group(2)
    for r in check_rows:
        got[r["name"]] = go_quote(errors.get(r["name"], ""))

differences = 0
for r in rows:
    if r["ver"] != "2.42":
        continue
    g = got.get(r["name"])
    if g is None:
        print("%s: promtool's alert did not fire" % r["name"])
        differences += 1
        continue
    if g != r["expected"]:
        differences += 1
        if UPDATE:
            cols = lines[r["line"]].split("\t")
            cols[6] = g
            lines[r["line"]] = "\t".join(cols)
        else:
            print("%s\n  expected: %s\n  promtool: %s" % (r["name"], r["expected"], g))

verified = sum(1 for r in rows if r["ver"] == "2.42")
if UPDATE:
    open(CASES, "w", encoding="utf-8").write("\n".join(lines))
    print("updated %d of %d rows checked against promtool (%d rows are 3.x only)"
          % (differences, verified, len(rows) - verified))
else:
    print("%d rows checked against promtool, %d differ; %d rows are 3.x only"
          % (verified, differences, len(rows) - verified))
    sys.exit(1 if differences else 0)
PYTHON
