"""Run the whole spec suite and print passed / failed / skipped per file and in total.

    python -m tests.spec.run [--json] [-k PATTERN]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from tests.spec.runner import run_file
from tests.spec.wast import SPEC_DIR, file_id, spec_files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-k", dest="pattern", default="")
    args = ap.parse_args(argv)
    if not SPEC_DIR.is_dir():
        print(f"spec suite not found at {SPEC_DIR}", file=sys.stderr)
        return 2
    totals = Counter()
    reasons: Counter = Counter()
    records = []
    for path in spec_files():
        name = file_id(path)
        if args.pattern not in name:
            continue
        r = run_file(path, name)
        totals.update(passed=r.passed, failed=r.failed, skipped=r.skipped)
        reasons.update(r.skip_reasons)
        records.append({"file": name, "passed": r.passed, "failed": r.failed,
                        "skipped": r.skipped, "failures": r.failures})
        if not args.json:
            print(f"{name:55} {r.passed:6} passed {r.failed:4} failed {r.skipped:6} skipped")
            for f in r.failures[:10]:
                print(f"    {f}")
    if args.json:
        print(json.dumps({"files": records, "totals": totals, "skip_reasons": reasons}))
    else:
        print(f"{'TOTAL':55} {totals['passed']:6} passed {totals['failed']:4} failed "
              f"{totals['skipped']:6} skipped")
        for reason, n in reasons.most_common():
            print(f"  skipped {n:6} x {reason}")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
