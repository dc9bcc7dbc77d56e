"""execute_predictions over N predictions (print(i) in main.py, run with
/usr/bin/python3) at two workers, against the same jobs sent straight to
POST /v1/batch from Python, and against running them bare with subprocess
from two threads (a temp dir per run, no sandbox). Prints predictions per
second for each, and the ratios.

    make bench-python                      # starts its own daemon (bin/sandboxd)
    python3 api/python/bench.py -n 200 --socket /run/sandboxd/sandboxd.sock
"""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "tests"))

from sandboxd import Client, Job, Step  # noqa: E402
from sandboxd.code_execution import Command, ExecutionConfig, Executable, execute_predictions  # noqa: E402

PY = "/usr/bin/python3"


def compat(n, workers):
    preds = [{"i": i} for i in range(n)]
    pre = lambda p: Executable(files={"main.py": f"print({p['i']})"}, commands=[Command([PY, "main.py"])])
    t0 = time.perf_counter()
    out = execute_predictions(ExecutionConfig(num_workers=workers, disable_tqdm=True), preds, pre)
    dt = time.perf_counter() - t0
    assert all(r["command_results"][0]["stdout"] == f"{r['i']}\n" for r in out.results)
    return dt


def batch(n, workers):
    jobs = [Job(key=i, files={"main.py": f"print({i})"}, steps=[Step(argv=[PY, "main.py"])]) for i in range(n)]
    c = Client()
    t0 = time.perf_counter()
    items = list(c.batch(jobs, concurrency=workers, progress=False))
    dt = time.perf_counter() - t0
    assert len(items) == n and all(it.result.steps[0].stdout == f"{it.key}\n" for it in items)
    return dt


def bare(n, workers):
    def one(i):
        d = tempfile.mkdtemp(prefix="bench-bare-")
        try:
            with open(os.path.join(d, "main.py"), "w") as f:
                f.write(f"print({i})")
            p = subprocess.run([PY, "main.py"], cwd=d, capture_output=True, timeout=10)
            return p.stdout.decode() == f"{i}\n"
        finally:
            shutil.rmtree(d)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        ok = list(pool.map(one, range(n)))
    dt = time.perf_counter() - t0
    assert all(ok)
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="predictions per mode (1000)")
    ap.add_argument("--workers", type=int, default=2, help="num_workers, batch concurrency, threads (2)")
    ap.add_argument("--socket", help="an existing daemon's socket (default: start bin/sandboxd)")
    args = ap.parse_args()

    daemon = None
    if args.socket:
        os.environ["SANDBOXD_SOCKET"] = args.socket
    else:
        from daemon import Daemon
        daemon = Daemon(concurrency=args.workers)
        os.environ["SANDBOXD_SOCKET"] = daemon.socket
    try:
        info = Client().info()
        print(f"sandboxd {info.version}, kernel {info.kernel}, cgroup {info.cgroup.mode}, "
              f"daemon concurrency {info.pool.concurrency}, {os.cpu_count()} CPUs; "
              f"{args.n} predictions, {args.workers} workers", flush=True)
        compat(20, args.workers)  # warm: the daemon's pools, the page cache
        rows = []
        for name, fn in (("execute_predictions (sandboxd.code_execution)", compat),
                         ("POST /v1/batch from Python", batch),
                         ("bare subprocess, 2 threads, no sandbox", bare)):
            dt = fn(args.n, args.workers)
            rows.append((name, args.n / dt, dt))
            print(f"  {name:<48} {args.n / dt:8.1f} predictions/s  ({dt:.2f} s)", flush=True)
        c, b, s = (r[1] for r in rows)
        print(f"execute_predictions / batch: {c / b:.2f}   execute_predictions / bare: {c / s:.2f}   "
              f"batch / bare: {b / s:.2f}")
    finally:
        if daemon is not None:
            daemon.stop()


if __name__ == "__main__":
    main()
