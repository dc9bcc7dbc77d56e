#!/bin/bash
# make run: shows sandboxd exec on a few programs, each with its verdict and
# what it used. (The daemon, sandboxd serve, comes with a later issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/sandboxd
if [ "$(id -u)" != 0 ]; then
	echo "sandboxd needs root: run make run as root" >&2
	exit 1
fi
show() {
	local title=$1; shift
	echo "== $title"
	echo "\$ sandboxd exec $*"
	"$bin" exec "$@" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("   verdict %-16s exit %-3s signal %-8s cpu %7.1f ms  wall %7.1f ms  peak %6.1f MiB  pids %s" % (
    r["verdict"], r["exit_code"], r["signal"] or "-", r["cpu_time_ms"], r["wall_time_ms"],
    r["memory_peak_bytes"] / 2**20, r["pids_peak"]))
for k in ("stdout", "stderr", "message"):
    if r[k]:
        print("   %s: %s" % (k, r[k].strip()[:200].replace("\n", "\\n")))
'
	echo
}
show "a normal program" -- python3 -c 'import platform; print("hello from", platform.node())'
show "an infinite loop, stopped by its CPU limit" --cpu-time-ms 500 -- python3 -c 'while True: pass'
show "a memory hog under 64 MiB" --memory-bytes 67108864 -- python3 -c 'x = bytearray(1 << 30); x[::4096] = b"x" * len(x[::4096])'
show "a fork bomb under 32 pids" --pids 32 --wall-time-ms 1000 -- sh -c 'f() { f | f & }; f; wait'
show "a forbidden system call" -- python3 -c 'import ctypes; ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)'
show "reading the host" -- sh -c 'cat /etc/shadow; ls /home /root; id'
echo "Try: $bin exec --help"
