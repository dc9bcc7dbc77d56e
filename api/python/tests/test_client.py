"""The client against the real daemon: every call, every verdict a program
can cause, streaming, cancel, batch order and keys, errors."""

import io
import threading
import time

import pytest

import sandboxd
from sandboxd import (
    Client, Conflict, File, InvalidArgument, Job, Limits, NotFound, Progress, SandboxdError, Step,
    UnreachableError,
)

PY = "/usr/bin/python3"


def one(client, argv, **step):
    r = client.run(Job(steps=[Step(argv=argv, **step)]))
    assert r.status in ("completed", "cancelled"), r
    return r.steps[0]


def test_ping_info_metrics(client):
    client.ping()
    info = client.info()
    assert info.version and info.kernel
    assert info.cgroup.mode in ("v1", "v2", "hybrid")
    assert info.pool.concurrency == 2
    prof = info.profile("default")
    assert prof.max_limits.memory_bytes >= prof.default_limits.memory_bytes > 0
    with pytest.raises(KeyError):
        info.profile("no-such-profile")
    assert "sandboxd_steps_total{verdict=\"ok\"}" in client.metrics()


def test_run_files_tracked_and_expected_stdout(client):
    r = client.run(Job(
        key={"case": 7},
        files={"main.py": "print(input()[::-1])", "run.sh": File(content="#!/bin/sh\necho hi\n", mode="0755"),
               "bin.dat": File(base64="AAEC")},
        steps=[Step(argv=[PY, "main.py"], stdin="hello\n", expected_stdout="olleh"),
               Step(argv=["./run.sh"], expected_stdout="ho"),
               Step(argv=["true"])],
        tracked_files=["main.py", "missing.txt"]))
    assert r.status == "completed" and r.id.startswith("r_")
    ok, wrong, skipped = r.steps
    assert ok.verdict == "ok" and ok.stdout == "olleh\n" and ok.stdout_matches is True and ok.ok
    assert wrong.verdict == "ok" and wrong.stdout_matches is False and not wrong.ok
    assert skipped.verdict == "skipped"
    assert r.verdict == "wrong_answer"
    assert r.files["main.py"].content == "print(input()[::-1])" and r.files["missing.txt"] is None
    assert r.timing.total_ms > 0


@pytest.mark.parametrize("verdict,argv,step", [
    ("ok", ["true"], {}),
    ("nonzero_exit", ["sh", "-c", "exit 3"], {}),
    ("signaled", ["sh", "-c", "kill -SEGV $$"], {}),
    ("cpu_time_limit", [PY, "-c", "while True: pass"], {"limits": Limits(cpu_time_ms=300)}),
    ("wall_time_limit", ["sleep", "10"], {"limits": Limits(wall_time_ms=300)}),
    ("memory_limit", [PY, "-c", "x = bytearray(512 << 20)"], {"limits": Limits(memory_bytes=64 << 20)}),
    ("output_limit", ["head", "-c", "100000", "/dev/zero"], {"limits": Limits(output_bytes=1000)}),
    ("syscall_blocked", [PY, "-c", "import ctypes; ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)"], {}),
    ("exec_failed", ["/nonexistent"], {}),
])
def test_verdicts(client, verdict, argv, step):
    s = one(client, argv, **step)
    assert s.verdict == verdict, s
    assert verdict in sandboxd.VERDICTS
    if verdict == "nonzero_exit":
        assert s.exit_code == 3
    if verdict == "signaled":
        assert s.signal == "SIGSEGV"
    if verdict == "output_limit":
        assert s.stdout_truncated and len(s.stdout) <= 1000 * 3  # utf8 of NULs
    if verdict in ("syscall_blocked", "exec_failed", "memory_limit"):
        assert s.message


def test_cancel_get_and_conflict(client):
    # Streamed, so that the cancel comes once the program has started (a
    # job is "running" from when it holds a slot, before its program runs).
    s = client.stream(Job(id="py-cancel-1", key="c1",
                          steps=[Step(argv=["sh", "-c", "echo up; sleep 30"]), Step(argv=["true"])]))
    events = iter(s)
    assert next(events).event == "started"
    assert next(events).data == "up\n"
    listed = [r for r in client.runs() if r.id == "py-cancel-1"]
    assert listed and listed[0].state == "running" and listed[0].key == "c1"
    info = client.cancel("py-cancel-1")
    assert info.id == "py-cancel-1" and info.steps == 2 and info.step == 0
    rest = list(events)
    assert rest[-1].event == "finished"
    r = s.result
    assert r.status == "cancelled"
    assert r.steps[0].verdict == "cancelled" and r.steps[0].signal == "SIGKILL"
    assert r.steps[1].verdict == "skipped"
    got = client.get("py-cancel-1")
    assert got.state == "finished" and got.result.status == "cancelled"
    with pytest.raises(Conflict) as e:
        client.cancel("py-cancel-1")
    assert e.value.code == "conflict" and e.value.status == 409 and "already finished" in e.value.message
    with pytest.raises(NotFound):
        client.get("py-no-such-job")


def test_pause_between_steps_and_continue_run(client):
    # Paused after each step before its step_finished goes out: continued
    # after the first, cancelled after the second; the third never ran.
    job = Job(id="py-pause-1", pause_between_steps=True, stop_on="never", tracked_files=["third"],
              steps=[Step(argv=["echo", "1"]), Step(argv=["sh", "-c", "exit 3"]),
                     Step(argv=["sh", "-c", "touch third"])])
    s = client.stream(job)
    states = []
    for ev in s:
        if ev.event != "step_finished":
            continue
        states.append(client.get("py-pause-1").state)
        if ev.step == 0:
            info = client.continue_run("py-pause-1")
            assert info.state == "running"
        elif ev.step == 1:
            client.cancel("py-pause-1")
    assert states == ["paused", "paused"]
    r = s.result
    assert r.status == "cancelled" and [x.verdict for x in r.steps] == ["ok", "nonzero_exit", "skipped"]
    assert r.files["third"] is None
    with pytest.raises(Conflict) as e:
        client.continue_run("py-pause-1")
    assert "is not paused" in e.value.message


def test_stream_events(client):
    code = "import sys\nprint('a', flush=True)\nprint('oops', file=sys.stderr, flush=True)\nprint('b')\n"
    s = client.stream(Job(id="py-stream-1", steps=[Step(argv=[PY, "-c", code]), Step(argv=["sh", "-c", "echo c"])]))
    events = list(s)
    kinds = [e.event for e in events]
    assert kinds[0] == "started" and events[0].id == "py-stream-1"
    assert kinds[-1] == "finished"
    out0 = "".join(e.data for e in events if e.event == "stdout" and e.step == 0)
    err0 = "".join(e.data for e in events if e.event == "stderr" and e.step == 0)
    assert out0 == "a\nb\n" and err0 == "oops\n"
    finished = [e for e in events if e.event == "step_finished"]
    assert [e.step for e in finished] == [0, 1]
    assert isinstance(finished[0].result, sandboxd.StepResult) and finished[1].result.stdout == "c\n"
    assert isinstance(s.result, sandboxd.Result) and s.result.status == "completed"
    assert kinds.index("step_finished") < kinds.index("finished")


def test_stream_close_cancels(client):
    with client.stream(Job(id="py-stream-2", steps=[Step(argv=["sleep", "30"])])) as s:
        it = iter(s)
        assert next(it).event == "started"
    deadline = time.monotonic() + 20
    while client.get("py-stream-2").state != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.get("py-stream-2").result.status == "cancelled"


def test_stream_error_is_raised_at_once(client):
    with pytest.raises(InvalidArgument):
        client.stream({"steps": [{"argv": []}]})


def test_batch_order_keys_and_summary(client):
    # later jobs are quicker, so the completion order differs from the input's
    jobs = [Job(key=f"k{i}", steps=[Step(argv=["sh", "-c", f"sleep 0.{9 - i}; echo {i}"])]) for i in range(10)]
    jobs.append({"key": "bad", "steps": []})
    jobs.append(Job(key={"n": 11}, steps=[Step(argv=["sh", "-c", "exit 1"])]))
    b = client.batch(jobs, concurrency=2, progress=False)
    items = list(b)
    assert sorted(i.index for i in items) == list(range(12))
    for it in items:
        if it.index < 10:
            assert it.key == f"k{it.index}" and it.result.steps[0].stdout == f"{it.index}\n"
    bad = next(i for i in items if i.index == 10)
    assert bad.result is None and bad.error.code == "invalid_argument" and bad.verdict == "invalid"
    assert next(i for i in items if i.index == 11).key == {"n": 11}
    assert [i.index for i in items] != list(range(12)), "completion order should differ"
    assert b.summary.total == 12 and b.summary.invalid == 1
    assert b.summary.verdicts == {"ok": 10, "nonzero_exit": 1}


def test_batch_generator_and_progress_line(client, capsys):
    gen = (Job(steps=[Step(argv=["true"])]) for _ in range(3))
    b = client.batch(gen, total=3)
    assert len(list(b)) == 3
    err = capsys.readouterr().err
    assert "3/3" in err and "ok=3" in err


def test_batch_leaving_early_cancels_the_rest(client):
    jobs = [Job(id=f"py-early-{i}", steps=[Step(argv=["sleep", "30" if i else "0"])]) for i in range(4)]
    b = client.batch(jobs, concurrency=2, progress=False)
    for item in b:
        assert item.index == 0
        break
    b.close()
    deadline = time.monotonic() + 20
    while any(r.id.startswith("py-early-") for r in client.runs()):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_batch_bad_concurrency_and_jobs_error(client):
    with pytest.raises(InvalidArgument) as e:
        list(client.batch([Job(steps=[Step(argv=["true"])])], concurrency=0, progress=False))
    assert e.value.status == 400 and "concurrency" in e.value.message

    def broken():
        yield Job(steps=[Step(argv=["true"])])
        raise RuntimeError("the jobs' source failed")
    with pytest.raises(RuntimeError, match="source failed"):
        list(client.batch(broken(), progress=False, total=2))


def test_errors(client, tmp_path):
    with pytest.raises(InvalidArgument) as e:
        client.run(Job(steps=[Step(argv=["true"], limits=Limits(memory_bytes=99999999999))]))
    assert e.value.code == "invalid_argument" and e.value.status == 400
    assert "steps[0].limits.memory_bytes" in e.value.message
    assert isinstance(e.value, SandboxdError)
    with pytest.raises(InvalidArgument):
        client.run({"steps": [{"argv": ["true"]}], "Steps": []})
    with pytest.raises(NotFound) as e:
        client.request("GET", "/v2/run")
    assert e.value.status == 404
    missing = str(tmp_path / "nothing.sock")
    with pytest.raises(UnreachableError) as e:
        Client(missing).info()
    assert e.value.socket == missing and missing in str(e.value)
    # the client keeps working after errors, on its kept-alive connection
    assert one(client, ["true"]).verdict == "ok"


def test_socket_from_environment(daemon, monkeypatch):
    monkeypatch.setenv("SANDBOXD_SOCKET", daemon.socket)
    assert Client().socket == daemon.socket
    monkeypatch.delenv("SANDBOXD_SOCKET")
    assert Client().socket == sandboxd.DEFAULT_SOCKET


def test_threads_share_a_client(client):
    results = []

    def work(i):
        results.append(one(client, ["sh", "-c", f"echo {i}"]).stdout)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"{i}\n" for i in range(8))


def test_file_cache(client):
    content = b"3 4\n" + bytes(range(256))
    cf = client.upload(content)
    assert len(cf.id) == 64 and cf.size == len(content)
    assert client.upload(io.BytesIO(content)).id == cf.id
    assert any(f.id == cf.id for f in client.files())
    assert client.download(cf.id) == content
    r = client.run(Job(files={"in.bin": File(cached=cf.id)},
                       steps=[Step(argv=["sh", "-c", "head -c 4 in.bin; head -c 3"], stdin_cached=cf.id)]))
    assert r.steps[0].stdout == "3 4\n3 4"
    client.delete_file(cf.id)
    with pytest.raises(NotFound):
        client.download(cf.id)


def test_progress_plain_line():
    buf = io.StringIO()
    p = Progress(4, desc="t", enabled=True, stream=buf, min_interval=0)
    p._tqdm = None  # the plain line, whether tqdm is installed or not
    for v in ("ok", "ok", "wall_time_limit", "ok"):
        p.update(v)
    p.close()
    last = buf.getvalue().strip().split("\r")[-1]
    assert "t: 4/4" in last and "/s" in last and "ETA" in last
    assert "ok=3" in last and "wall_time_limit=1" in last
    q = Progress(2, enabled=False, stream=buf)
    q.update("ok")
    assert q.done == 1 and q.verdicts == {"ok": 1}
