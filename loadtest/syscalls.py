"""System calls per request from an `strace -c -o FILE` summary and wrk's request count.
Usage: python3 loadtest/syscalls.py STRACE_FILE REQUESTS [TOP]
Prints "<total>/req (<call> <n>, ...)" with the TOP most frequent calls (default 6)."""
import sys

path, requests = sys.argv[1], int(sys.argv[2])
top_n = int(sys.argv[3]) if len(sys.argv) > 3 else 6
calls = {}
for line in open(path):
    parts = line.split()
    if len(parts) >= 5 and parts[-1] not in ("syscall", "total") and parts[3].isdigit():
        calls[parts[-1]] = int(parts[3])
top = sorted(calls.items(), key=lambda kv: -kv[1])[:top_n]
print("%.2f/req (%s)" % (sum(calls.values()) / requests, ", ".join("%s %.2f" % (k, v / requests) for k, v in top)))
