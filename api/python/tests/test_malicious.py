"""A malicious prediction in one execute_predictions call with well-behaved
ones: it reads /etc/shadow, connects to a listener on the host's loopback,
forks 1,000 processes and allocates 4 GiB; each is contained, and its
neighbours pass."""

import json
import socket

from sandboxd.code_execution import Command, CommandResult, ExecutionConfig, Executable, execute_predictions

PY = "/usr/bin/python3"

MALICIOUS = """
import json, os, socket, sys, time
out = {}
try:
    out["shadow"] = open("/etc/shadow").read()
except Exception as e:
    out["shadow"] = "ERR " + type(e).__name__
try:
    s = socket.create_connection(("127.0.0.1", PORT), timeout=2)
    s.sendall(b"escaped")
    out["net"] = "CONNECTED"
except Exception as e:
    out["net"] = "ERR " + type(e).__name__
forks = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forks += 1
except OSError as e:
    out["fork_error"] = e.strerror
out["forks"] = forks
print(json.dumps(out), flush=True)
x = bytearray(4 << 30)
print("allocated 4 GiB", flush=True)
"""


def test_malicious_prediction_is_contained():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        preds = [{"code": f"print({i} * 2)", "want": f"{i * 2}\n"} for i in range(6)]
        preds.insert(3, {"code": MALICIOUS.replace("PORT", str(port)), "want": None})

        def pre(p):
            return Executable(files={"main.py": p["code"]}, commands=[Command([PY, "main.py"], timeout=20)])
        out = execute_predictions(ExecutionConfig(num_workers=2, disable_tqdm=True), preds, pre).results
        for r in out:
            c = CommandResult(**r["command_results"][0])
            if r["want"] is not None:
                assert c.return_code == 0 and c.stdout == r["want"], c
                continue
            assert c.verdict == "memory_limit" and c.return_code == -9, c
            assert "allocated" not in c.stdout
            report = json.loads(c.stdout.splitlines()[0])
            assert "root:" not in report["shadow"] and report["shadow"].startswith("ERR"), report
            assert report["net"].startswith("ERR"), report
            assert report["forks"] < 1000 and report.get("fork_error"), report
        try:
            conn, _ = listener.accept()
            conn.close()
            raise AssertionError("the sandbox reached the host's loopback")
        except BlockingIOError:
            pass
    finally:
        listener.close()
