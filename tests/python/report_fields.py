"""report_fields.py -- prints the per-scope numbers of cymem-report --json as NAME=VALUE lines
(SCOPE.FIELD=N, and SCOPE.instances), for tests/check_python.c to assert exactly.

usage: report_fields.py CYMEM-REPORT DIR

Reads every final report in DIR (snapshots left out). Scopes of the same name in several
processes are summed. Fails (status 2) when there is none, or cymem-report fails.
"""

import glob
import json
import os
import subprocess
import sys

FIELDS = ("instances", "allocations", "bytes_allocated", "frees", "leaked_blocks",
          "leaked_bytes", "outlived_blocks", "bulk_freed_blocks", "bulk_freed_bytes")


def main():
    tool, directory = sys.argv[1], sys.argv[2]
    files = sorted(f for f in glob.glob(os.path.join(directory, "*.cmt"))
                   if ".snapshot" not in os.path.basename(f))
    if not files:
        sys.exit("report_fields.py: no report in %s" % directory)
    run = subprocess.run([tool, "--json", "--"] + files, stdout=subprocess.PIPE)
    if run.returncode not in (0, 1):
        sys.exit(2)
    report = json.loads(run.stdout)
    sums = {}
    for proc in report["processes"]:
        print("process.ended=%s" % proc["ended"])
        print("process.complete=%d" % proc["complete"])
        for scope in proc["scopes"]:
            row = sums.setdefault(scope["name"], dict.fromkeys(FIELDS, 0))
            for f in FIELDS:
                row[f] += scope[f]
    for name, row in sums.items():
        for f in FIELDS:
            print("%s.%s=%d" % (name, f, row[f]))


if __name__ == "__main__":
    main()
