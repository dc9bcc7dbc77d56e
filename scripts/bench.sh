#!/bin/bash
# make bench: what a sandbox costs, always against bare fork/exec of the same
# command measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=run/bench
mkdir -p "$out"
bin=$PWD/bin/sandboxd

echo "== end to end: one process start per run (hyperfine, no shell)"
hyperfine -N --warmup 20 --runs ${RUNS:-300} --export-json "$out/exec.json" \
	-n 'bare /bin/true' '/bin/true' \
	-n 'sandboxd exec -- /bin/true' "$bin exec -- /bin/true" \
	-n 'bare python3 -c pass' '/usr/bin/python3 -c pass' \
	-n 'sandboxd exec -- python3 -c pass' "$bin exec -- python3 -c pass" >/dev/null
python3 - "$out/exec.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
def ms(name, k): return r[name][k] * 1000
for bare, boxed in (("bare /bin/true", "sandboxd exec -- /bin/true"), ("bare python3 -c pass", "sandboxd exec -- python3 -c pass")):
    b, s = ms(bare, "median"), ms(boxed, "median")
    print("%-34s median %7.2f ms   %-34s median %7.2f ms   overhead %+6.2f ms   ratio %5.2fx" % (bare, b, boxed, s, s - b, s / b))
PY

echo
echo "== in process: the engine's RunStep against os/exec of the same command (go test -bench)"
go test -tags embedinit -run '^$' -bench 'Benchmark(Bare|Sandbox)True$' -benchtime "${BENCHTIME:-300x}" -count 1 ./test/ > "$out/engine.txt"
grep -E '^Benchmark' "$out/engine.txt"
python3 - "$out/engine.txt" <<'PY'
import re, sys
ns = {}
for line in open(sys.argv[1]):
    m = re.match(r"Benchmark(\w+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        ns[m.group(1)] = float(m.group(3))
b, s = ns["BareTrue"], ns["SandboxTrue"]
print("engine RunStep /bin/true %.2f ms, bare os/exec %.2f ms: overhead %+.2f ms, ratio %.2fx" % (s / 1e6, b / 1e6, (s - b) / 1e6, s / b))
PY

echo
echo "== the daemon: POST /v1/run latency and batch throughput, against bare os/exec (go test -bench)"
go test -tags embedinit -run '^$' -bench 'Benchmark(Latency|Throughput)' -benchtime "${BENCHTIME:-300x}" -count 1 ./test/ > "$out/daemon.txt"
grep -E '^Benchmark' "$out/daemon.txt"
python3 - "$out/daemon.txt" <<'PY'
import re, sys
m = {}
for line in open(sys.argv[1]):
    name = re.match(r"Benchmark(\w+?)(-\d+)?\s", line)
    if name:
        m[name.group(1)] = {u: float(v) for v, u in re.findall(r"([\d.]+) ([\w/-]+)", line)}
lb, ld = m["LatencyBare"], m["LatencyDaemon"]
print("POST /v1/run /bin/true: p50 %.2f ms, p99 %.2f ms; bare fork/exec p50 %.2f ms, p99 %.2f ms; p50 ratio %.1fx" % (
    ld["p50-ms"], ld["p99-ms"], lb["p50-ms"], lb["p99-ms"], ld["p50-ms"] / lb["p50-ms"]))
tb, td = m["ThroughputBare"]["runs/s"], m["ThroughputDaemon"]["runs/s"]
print("batch of /bin/true at concurrency 2: %.0f jobs/s; bare fork/exec with 2 workers: %.0f runs/s; ratio %.2f" % (td, tb, td / tb))
PY
