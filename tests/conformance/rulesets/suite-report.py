#!/usr/bin/env python3
"""Count and lint the conformance rule sets; optionally prove each alert's life cycle.

usage: suite-report.py [--lifecycle]

Counts rule files, alerting and recording rules, test files and test cases, and checks
the rules this suite is built on (see README.md):

  * evaluation_interval is 30s and every group interval, if set, is 30s as well;
  * group_eval_order lists every group in file order (promtool otherwise picks a
    random order, and alerts could read recorded samples from the previous step);
  * every eval_time lies half-way between input samples (mm:30), so no sample sits
    exactly on the left edge of a range or lookback window;
  * every alerting rule is expected to fire somewhere, every recording rule is
    queried by some promql_expr_test, and every tested alertname exists.

With --lifecycle it also runs promtool once per test file with an ALERTS query at
every alert_rule_test time (promtool only reports firing alerts itself) and checks
that each alert is seen pending (if it has `for`), firing, and resolved afterwards.
Exits 1 when any check fails.
"""
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(d):
    if isinstance(d, (int, float)):
        return float(d)
    return sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", str(d)))


def load_rules(path):
    alerts, records = {}, {}
    doc = yaml.safe_load(open(path))
    problems = []
    for group in doc["groups"]:
        if "interval" in group and seconds(group["interval"]) != 30:
            problems.append("%s: group %s has interval %s, not 30s" % (path, group["name"], group["interval"]))
        for rule in group["rules"]:
            if "alert" in rule:
                alerts[rule["alert"]] = rule
            else:
                records[rule["record"]] = rule
    return alerts, records, problems


def lifecycle(test_path, doc):
    """ALERTS states at every alert_rule_test time: {(seconds, alertname): {state: count}}."""
    base = os.path.dirname(os.path.abspath(test_path))
    doc = yaml.safe_load(yaml.safe_dump(doc))
    doc["rule_files"] = [os.path.join(base, f) for f in doc["rule_files"]]
    for group in doc["tests"]:
        queries = []
        for case in group.get("alert_rule_test", []):
            q = {"expr": 'ALERTS{alertname="%s"}' % case["alertname"], "eval_time": case["eval_time"],
                 "exp_samples": [{"labels": "never_matches", "value": -1}]}
            if q not in queries:
                queries.append(q)
        group["promql_expr_test"] = queries
        group["alert_rule_test"] = []
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tmp:
        yaml.safe_dump(doc, tmp)
    res = subprocess.run(["promtool", "test", "rules", tmp.name], capture_output=True, text=True)
    os.unlink(tmp.name)
    out = res.stdout + res.stderr
    states = {}
    pattern = re.compile(r'expr: "ALERTS\{alertname=\\"(\w+)\\"\}", time: (\S+),\n\s+exp:.*\n\s+got: (.*(?:\n\s+\{.*)*)')
    for name, t, got in pattern.findall(out):
        states[(seconds(t), name)] = dict(collections.Counter(re.findall(r'alertstate="(\w+)"', got)))
    return states


def main(argv):
    check_lifecycle = "--lifecycle" in argv
    problems = []
    totals = collections.Counter()
    all_alerts, all_records = {}, {}
    per_file = []

    for rules_path in sorted(glob.glob(os.path.join(HERE, "*.rules.yml"))):
        alerts, records, probs = load_rules(rules_path)
        problems += probs
        all_alerts.update(alerts)
        all_records.update(records)
        totals["rule files"] += 1
        totals["alerting rules"] += len(alerts)
        totals["recording rules"] += len(records)

    fired, queried, tested_names = set(), set(), set()
    lifecycle_seen = collections.defaultdict(lambda: collections.defaultdict(list))
    for test_path in sorted(glob.glob(os.path.join(HERE, "*.test.yml"))):
        name = os.path.basename(test_path)
        doc = yaml.safe_load(open(test_path))
        totals["test files"] += 1
        if seconds(doc.get("evaluation_interval", "1m")) != 30:
            problems.append("%s: evaluation_interval must be 30s" % name)
        group_names = []
        for rf in doc["rule_files"]:
            group_names += [g["name"] for g in yaml.safe_load(open(os.path.join(HERE, rf)))["groups"]]
        if len(group_names) > 1 and doc.get("group_eval_order") != group_names:
            problems.append("%s: group_eval_order must list %s in that order" % (name, group_names))
        file_alert_tests = file_expr_tests = 0
        for group in doc["tests"]:
            totals["test groups"] += 1
            interval = seconds(group.get("interval", "1m"))
            cases = group.get("alert_rule_test", []) + group.get("promql_expr_test", [])
            for case in cases:
                t = seconds(case["eval_time"])
                if t % 60 != 30 or t % interval == 0:
                    problems.append("%s: eval_time %s is not half-way between samples" % (name, case["eval_time"]))
            for case in group.get("alert_rule_test", []):
                file_alert_tests += 1
                tested_names.add(case["alertname"])
                if case["alertname"] not in all_alerts:
                    problems.append("%s: no alerting rule named %s" % (name, case["alertname"]))
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
            for case in group.get("promql_expr_test", []):
                file_expr_tests += 1
                for rec in all_records:
                    if re.search(r"(?<![\w:])%s(?![\w:])" % re.escape(rec), case["expr"]):
                        queried.add(rec)
        totals["alert_rule_test cases"] += file_alert_tests
        totals["promql_expr_test cases"] += file_expr_tests
        per_file.append((name, file_alert_tests, file_expr_tests))
        if check_lifecycle:
            states = lifecycle(test_path, doc)
            for group in doc["tests"]:
                for case in group.get("alert_rule_test", []):
                    key = (seconds(case["eval_time"]), case["alertname"])
                    if key not in states:
                        problems.append("%s: could not read ALERTS for %s at %s" % (name, key[1], case["eval_time"]))
                        continue
                    st = states[key]
                    if st.get("pending"):
                        lifecycle_seen[case["alertname"]]["pending"].append((name, key[0]))
                    if case.get("exp_alerts"):
                        lifecycle_seen[case["alertname"]]["firing"].append((name, key[0]))
                    elif not st.get("firing"):
                        lifecycle_seen[case["alertname"]]["quiet"].append((name, key[0]))

    for alert in sorted(set(all_alerts) - fired):
        problems.append("alert %s is never expected to fire" % alert)
    for rec in sorted(set(all_records) - queried):
        problems.append("recording rule %s is not queried by any promql_expr_test" % rec)

    if check_lifecycle:
        for alert, rule in sorted(all_alerts.items()):
            seen = lifecycle_seen[alert]
            if rule.get("for") and not seen["pending"]:
                problems.append("alert %s is never checked while pending" % alert)
            if str(rule["expr"]).strip() == "vector(1)":
                continue  # the Watchdog never resolves
            firing_times = [(f, t) for f, t in seen["firing"]]
            resolved_later = any(q_f == f and q_t > t for f, t in firing_times for q_f, q_t in seen["quiet"])
            if not resolved_later:
                problems.append("alert %s is never checked after it resolved" % alert)
        totals["checks with a pending alert"] = sum(len(v["pending"]) for v in lifecycle_seen.values())
        totals["checks expecting firing alerts"] = sum(len(v["firing"]) for v in lifecycle_seen.values())
        totals["checks expecting no firing alert"] = sum(len(v["quiet"]) for v in lifecycle_seen.values())

    width = max(len(n) for n, _, _ in per_file)
    print("%-*s  %16s  %17s" % (width, "test file", "alert_rule_test", "promql_expr_test"))
    for name, a, p in per_file:
        print("%-*s  %16d  %17d" % (width, name, a, p))
    print()
    for key in ["rule files", "alerting rules", "recording rules", "test files", "test groups",
                "alert_rule_test cases", "promql_expr_test cases", "checks with a pending alert",
                "checks expecting firing alerts", "checks expecting no firing alert"]:
        if key in totals:
            print("%-48s %d" % (key, totals[key]))
    if problems:
        print()
        for p in problems:
            print("PROBLEM:", p)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
