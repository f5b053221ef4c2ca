#!/usr/bin/env python3
"""Gate on checkov's JSON report: every failed check must be suppressed in keel's output.

checkov's terraform_json runner ignores inline skip comments, so keel writes each
suppression, with its reason, into the `//` comment key of the flagged block
(`checkov:skip=CKV_AWS_91:<reason>`). This script reads checkov's report (`-o json`), looks
for that comment inside each failed block's line range, prints the suppressed findings with
their reasons, and fails on anything unexplained. Kubernetes findings are suppressed by
checkov itself through `checkov.io/skip` annotations and arrive here as skipped checks.

usage: checkov_gate.py REPORT.json SCAN_ROOT
"""
import json
import os
import re
import sys


def main() -> int:
    report_path, root = sys.argv[1], sys.argv[2]
    with open(report_path, encoding="utf-8") as f:
        data = json.load(f)
    reports = data if isinstance(data, list) else [data]
    unexplained, suppressed, passed, skipped, parse_errors = [], [], 0, 0, []
    for report in reports:
        results = report.get("results", {})
        passed += len(results.get("passed_checks", []))
        for s in results.get("skipped_checks", []):
            skipped += 1
            reason = (s.get("suppress_comment") or "").strip() or "reason in the object's checkov.io/skip annotation"
            suppressed.append((s["check_id"], s.get("file_path", ""), s.get("resource", ""), reason))
        parse_errors += results.get("parsing_errors", []) or report.get("summary", {}).get("parsing_error_files", []) or []
        for c in results.get("failed_checks", []):
            path = c.get("file_abs_path") or os.path.join(root, c["file_path"].lstrip("/"))
            start, end = c.get("file_line_range", [0, 0])
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()[max(start - 1, 0):end]
            text = "".join(lines)
            m = re.search(r"checkov:skip=" + re.escape(c["check_id"]) + r":([^;\"]*)", text)
            address = block_address(lines)
            where = f"{os.path.relpath(path, root)}:{start}"
            if m:
                suppressed.append((c["check_id"], where, address, m.group(1).strip()))
            else:
                unexplained.append((c["check_id"], c["check_name"], where, address))
    unused = unused_suppressions(root, reports)
    for check, where, address, reason in sorted(suppressed):
        print(f"suppressed {check} {address} ({where}): {reason}")
    for check, name, where, address in sorted(unexplained):
        print(f"FAILED {check} {address} ({where}): {name}")
    for p in parse_errors:
        print(f"PARSE ERROR {p}")
    for where, check in unused:
        print(f"UNUSED suppression {check} ({where}): no such failure in its block; remove it from the construct")
    print(f"checkov gate: {passed} passed, {len(unexplained) + len(parse_errors)} failed, "
          f"{len(suppressed)} suppressed with a reason, {len(unused)} unused suppressions")
    return 1 if unexplained or parse_errors or unused else 0


def unused_suppressions(root, reports):
    """Terraform `//` suppressions whose check did not fail inside the block that carries them."""
    failed = {}
    scanned = set()
    for report in reports:
        if report.get("check_type") != "terraform_json":
            continue
        results = report.get("results", {})
        for c in results.get("failed_checks", []) + results.get("passed_checks", []):
            path = c.get("file_abs_path") or os.path.join(root, c["file_path"].lstrip("/"))
            scanned.add(os.path.realpath(path))
        for c in results.get("failed_checks", []):
            path = os.path.realpath(c.get("file_abs_path") or os.path.join(root, c["file_path"].lstrip("/")))
            failed.setdefault(path, []).append((c["check_id"], *c.get("file_line_range", [0, 0])))
    unused = []
    for path in sorted(scanned):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                for check in re.findall(r"checkov:skip=([A-Z0-9_]+):", line):
                    hit = any(c == check and start <= number <= end for c, start, end in failed.get(path, []))
                    if not hit:
                        unused.append((f"{os.path.relpath(path, root)}:{number}", check))
    return unused


def block_address(lines):
    """The block name of a failed check's range: its first `"name": {` line."""
    for line in lines[:1]:
        m = re.match(r'\s*"([^"]+)"\s*:', line)
        if m:
            return m.group(1)
    return "?"


if __name__ == "__main__":
    sys.exit(main())
