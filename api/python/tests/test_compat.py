"""sandboxd.code_execution, written from the behaviour code_execution's
users rely on (and the differences api/python/README.md lists)."""

import json
import os

import pytest

from sandboxd import Limits
from sandboxd.code_execution import (
    Command, CommandResult, ExecutionConfig, Executable, ExecutionResult, OverallExecutionResults,
    default_should_early_stop, execute_predictions,
)
from sandboxd.code_execution.entrypoints import _fold_repeats

PY = "/usr/bin/python3"


def cfg(**kw):
    kw.setdefault("num_workers", 2)
    kw.setdefault("disable_tqdm", True)
    return ExecutionConfig(**kw)


def run_one(exe, **config):
    out = execute_predictions(cfg(**config), [{"id": 0}], lambda _: exe)
    assert isinstance(out, OverallExecutionResults)
    return out.results[0]


def sh(script, **kw):
    return Command(["sh", "-c", script], **kw)


def test_stdin_string_and_list():
    exe = Executable(files={"echo.py": "import sys\nprint(repr(sys.stdin.read()))"},
                     commands=[Command([PY, "echo.py"], stdin="a b\nc\n"),
                               Command([PY, "echo.py"], stdin=["1", "2", "3"]),
                               Command([PY, "echo.py"])])
    r = run_one(exe)
    outs = [c["stdout"] for c in r["command_results"]]
    assert outs == ["'a b\\nc\\n'\n", "'1\\n2\\n3'\n", "''\n"]


def test_num_times_repeats_and_averages():
    exe = Executable(files={}, commands=[sh("echo run >> runs.txt; echo hi", num_times=3)],
                     tracked_files=["runs.txt"])
    r = run_one(exe)
    assert r["tracked_files"]["runs.txt"] == "run\nrun\nrun\n"
    (c,) = r["command_results"]
    assert c["return_code"] == 0 and c["stdout"] == "hi\n" and c["runtime"] > 0
    runs = [CommandResult(0, t, "x", "", False) for t in (1.0, 2.0, 6.0)]
    assert _fold_repeats(runs).runtime == 3.0


def test_num_times_stops_at_the_first_failure():
    script = "echo run >> runs.txt; n=$(wc -l < runs.txt); echo try $n; [ $n -lt 2 ]"
    exe = Executable(files={}, commands=[sh(script, num_times=5), sh("touch after")],
                     tracked_files=["runs.txt", "after"])
    r = run_one(exe)
    assert r["tracked_files"] == {"runs.txt": "run\nrun\n", "after": None}
    (c,) = r["command_results"]
    assert c["return_code"] == 1 and c["stdout"] == "try 2\n"


@pytest.mark.parametrize("codes,ran", [
    ((0, 0, 0), 3), ((0, 1, 0), 2), ((1, 0, 0), 1), ((0, 0, 2), 3), ((3, 3, 3), 1),
])
def test_default_early_stop(codes, ran):
    cmds = [sh(f"echo {i}; touch ran{i}; exit {rc}") for i, rc in enumerate(codes)]
    r = run_one(Executable(files={}, commands=cmds, tracked_files=["ran0", "ran1", "ran2"]))
    results = r["command_results"]
    assert [c["return_code"] for c in results] == list(codes[:ran])
    assert [c["stdout"] for c in results] == [f"{i}\n" for i in range(ran)]
    assert [r["tracked_files"][f"ran{i}"] is not None for i in range(3)] == [i < ran for i in range(3)]
    assert r["expected_num_commands"] == 3


def test_timeout_in_the_middle():
    cmds = [sh("echo one"), sh("echo before; sleep 30", timeout=0.5), sh("touch third")]
    r = run_one(Executable(files={}, commands=cmds, tracked_files=["third"]))
    res = [CommandResult(**c) for c in r["command_results"]]
    assert len(res) == 2
    assert res[1].timed_out and res[1].stdout == "before\n"
    assert res[1].return_code != 0 and res[1].had_error and res[1].verdict == "wall_time_limit"
    assert r["tracked_files"]["third"] is None


def test_no_timeout_takes_default_timeout():
    r = run_one(Executable(files={}, commands=[sh("sleep 30")]), default_timeout=0.4)
    c = r["command_results"][0]
    assert c["timed_out"] and c["return_code"] == -9


def test_custom_early_stop_stops_after_a_success():
    calls = []

    def stop_after_first(idx, res):
        calls.append((idx, res.stdout))
        return idx == 0
    cmds = [sh("echo a"), sh("echo b; touch ran1"), sh("touch ran2")]
    r = run_one(Executable(files={}, commands=cmds, tracked_files=["ran1", "ran2"],
                           should_early_stop=stop_after_first))
    assert [c["stdout"] for c in r["command_results"]] == ["a\n"]
    assert calls == [(0, "a\n")]
    assert r["tracked_files"] == {"ran1": None, "ran2": None}


def test_custom_early_stop_runs_past_failures():
    cmds = [sh("exit 1"), sh("echo b; exit 2"), sh("echo c")]
    r = run_one(Executable(files={}, commands=cmds, should_early_stop=lambda i, res: False))
    assert [c["return_code"] for c in r["command_results"]] == [1, 2, 0]
    assert r["command_results"][2]["stdout"] == "c\n"


def test_custom_early_stop_on_a_timeout_and_ignore_error():
    cmds = [sh("exit 4", ignore_error=True), sh("sleep 30", timeout=0.3), sh("echo never")]
    seen = []

    def rule(i, res):
        seen.append(i)
        return res.timed_out
    r = run_one(Executable(files={}, commands=cmds, should_early_stop=rule))
    assert len(r["command_results"]) == 2 and seen == [0, 1]
    assert r["command_results"][1]["timed_out"]
    # ignore_error under the default rule: the failure does not stop it
    r = run_one(Executable(files={}, commands=[sh("exit 4", ignore_error=True), sh("echo next")]))
    assert [c["stdout"] for c in r["command_results"]] == ["", "next\n"]


def test_ensure_all_run():
    r = run_one(Executable(files={}, commands=[sh("exit 1"), sh("echo b")], ensure_all_run=True))
    assert [c["return_code"] for c in r["command_results"]] == [1, 0]


def test_tracked_files_present_missing_and_after_timeout():
    cmds = [sh("echo out > out.txt; mkdir d; echo x > d/y; echo partial > late.txt; sleep 30", timeout=0.5)]
    exe = Executable(files={"given.txt": "given"}, commands=cmds,
                     tracked_files=["given.txt", "out.txt", "./d/y", "late.txt", "missing.txt", "d"])
    r = run_one(exe)
    assert r["command_results"][0]["timed_out"]
    assert r["tracked_files"] == {"given.txt": "given", "out.txt": "out\n", "./d/y": "x\n",
                                  "late.txt": "partial\n", "missing.txt": None, "d": None}


def test_syntax_errors_skipped_through_invalid_result():
    preds = [{"code": "print(1)"}, {"code": "def f(:\n"}, {"code": "print(3)"}]

    def pre(p):
        try:
            compile(p["code"], "main.py", "exec")
        except SyntaxError:
            return ExecutionResult.invalid_result(num_commands=1)
        return Executable(files={"main.py": p["code"]}, commands=[Command([PY, "main.py"])])
    out = execute_predictions(cfg(), preds, pre).results
    assert [r["command_results"][0]["stdout"] for r in out] == ["1\n", "SyntaxError", "3\n"]
    assert out[1]["cwd"] is None and out[1]["key"] == (1, 0) and out[1]["code"] == "def f(:\n"
    assert out[1]["preprocess_time"] >= 0 and "postprocess_time" in out[1]


def test_several_executables_per_prediction():
    preds = [{"n": 1}, {"n": 2}]

    def pre(p):
        return [Executable(files={}, commands=[sh(f"echo {p['n']}-{k}")]) for k in range(p["n"] + 1)]

    def post(pred, results):
        return {"n": pred["n"], "outs": [r.command_results[0].stdout for r in results],
                "keys": [r.key for r in results]}
    out = execute_predictions(cfg(), preds, pre, postprocessor=post, preproc_returns_list=True).results
    assert out[0]["outs"] == ["1-0\n", "1-1\n"] and out[0]["keys"] == [(0, 0), (0, 1)]
    assert out[1]["outs"] == ["2-0\n", "2-1\n", "2-2\n"]


def test_500_predictions_in_order():
    preds = [{"i": i} for i in range(500)]
    pre = lambda p: Executable(files={"main.py": f"print({p['i']})"}, commands=[Command([PY, "main.py"])])
    out = execute_predictions(ExecutionConfig(num_workers=2, disable_tqdm=True), preds, pre)
    assert [r["i"] for r in out.results] == list(range(500))
    assert all(r["command_results"][0]["stdout"] == f"{r['i']}\n" for r in out.results)
    assert all(r["command_results"][0]["return_code"] == 0 for r in out.results)
    t = out.timing_dict
    assert set(t) == {"net_time", "pure_exec_time", "execution_time", "writing_time",
                      "postprocessing_time", "preprocessing_time", "timestamp"}
    assert t["net_time"] >= t["execution_time"] > 0


def test_num_workers_one_runs_one_at_a_time():
    script = "date +%s.%N; sleep 0.2; date +%s.%N"
    preds = [{}] * 4
    out = execute_predictions(cfg(num_workers=1), preds, lambda _: Executable(files={}, commands=[sh(script)]))
    spans = sorted(tuple(map(float, r["command_results"][0]["stdout"].split())) for r in out.results)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_limits_come_from_the_sandbox():
    hog = "x = bytearray(300 << 20)\nprint('allocated')"
    exe = Executable(files={"hog.py": hog}, commands=[Command([PY, "hog.py"])])
    c = run_one(exe, limits=Limits(memory_bytes=64 << 20))["command_results"][0]
    assert c["verdict"] == "memory_limit" and c["return_code"] == -9 and "allocated" not in c["stdout"]
    assert "memory_limit" in c["stderr"]
    exe = Executable(files={"hog.py": hog}, commands=[Command([PY, "hog.py"])], limits=Limits(memory_bytes=512 << 20))
    assert run_one(exe)["command_results"][0]["stdout"] == "allocated\n"


def test_postprocessors_dict_commands_and_bytes_files():
    exe = Executable(files={"b.bin": b"\x00\x01", "run.sh": "wc -c < b.bin"},
                     commands=[{"command": ["sh", "run.sh"], "timeout": 5}],
                     stdout_postprocessor=str.strip)
    r = run_one(exe)
    assert r["command_results"][0]["stdout"] == "2"


def test_exec_failure_is_an_unexpected_error():
    c = CommandResult(**run_one(Executable(files={}, commands=[Command(["/nonexistent"])]))["command_results"][0])
    assert c.had_unexpected_error and c.had_error and c.verdict == "exec_failed" and c.return_code != 0


def test_debug_and_error_directories(tmp_path):
    preds = [{"i": 0}, {"i": 1}]
    pre = lambda p: Executable(files={"main.py": "print(1)"},
                               commands=[Command([PY, "main.py"] if p["i"] == 0 else ["/nonexistent"])])
    execute_predictions(cfg(), preds, pre, debug_dir=str(tmp_path / "dbg"), error_directory=str(tmp_path / "err"))
    assert open(tmp_path / "dbg" / "pred0.0" / "main.py").read() == "print(1)"
    assert json.load(open(tmp_path / "dbg" / "pred1.0" / "job.json"))["steps"][0]["argv"] == ["/nonexistent"]
    assert os.listdir(tmp_path / "err") == ["1.0.json"]


def test_result_properties():
    r = ExecutionResult(key=(0, 0), command_results=[CommandResult(0, 0.1, "", "", False),
                                                     CommandResult(2, 0.1, "", "", True)],
                        elapsed=1.0, cwd="/workspace", tracked_files={}, expected_num_commands=3)
    assert r.timed_out and r.had_error and r.last_cmd.return_code == 2 and len(r) == 2
    assert not r.all_had_return_code(0) and r[0].return_code == 0
    assert r.to_dict()["command_results"][1]["timed_out"] is True
    assert default_should_early_stop(0, r[1]) and not default_should_early_stop(0, r[0])
    inv = ExecutionResult.invalid_result(num_commands=2)
    assert len(inv) == 2 and inv.had_error and inv.cwd is None
