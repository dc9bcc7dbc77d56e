"""A CodeContests-style judge on sandboxd, written against the code_execution
API: one command per test case with that test's stdin, stopping at the first
wrong answer, under each problem's own time and memory limits (from the
sandbox, not from code prepended to the program).

    SANDBOXD_SOCKET=run/sandboxd.sock python3 api/python/examples/codecontests.py
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sandboxd import Limits  # noqa: E402
from sandboxd.code_execution import Command, ExecutionConfig, Executable, execute_predictions  # noqa: E402

PROBLEMS = {
    "sum": {
        "time_limit_s": 1.0, "memory_bytes": 64 << 20,
        "tests": [("1 2\n", "3"), ("10 -4\n", "6"), ("1000000000 1000000000\n", "2000000000")],
    },
    "sort": {
        "time_limit_s": 2.0, "memory_bytes": 128 << 20,
        "tests": [("3\n3 1 2\n", "1 2 3"), ("1\n5\n", "5"), ("4\n4 4 1 0\n", "0 1 4 4")],
    },
}

SUBMISSIONS = [
    ("sum", "accepted", "a, b = map(int, input().split())\nprint(a + b)\n"),
    ("sum", "wrong on test 2", "a, b = map(int, input().split())\nprint(a - b if a == 10 else a + b)\n"),
    ("sum", "too slow", "a, b = map(int, input().split())\nwhile a: a += 1\n"),
    ("sort", "accepted", "input()\nprint(*sorted(map(int, input().split())))\n"),
    ("sort", "memory", "input()\nx = [0] * (50 << 20)\nprint(*sorted(map(int, input().split())))\n"),
    ("sort", "crash", "n = int(input())\nprint(*sorted(map(int, input().split()))[:n - 1], 1 // 0)\n"),
]


class StopAtWrongAnswer:
    """The early stop: a failing run, or an answer that differs from the
    test's expected output (compared token by token)."""

    def __init__(self, expected):
        self.expected = expected

    def __call__(self, idx, res):
        return res.had_error or res.timed_out or res.stdout.split() != self.expected[idx].split()


def preprocess(sub):
    problem = PROBLEMS[sub["problem"]]
    limits = Limits(memory_bytes=problem["memory_bytes"])
    commands = [Command(["python3", "main.py"], timeout=problem["time_limit_s"], stdin=stdin)
                for stdin, _ in problem["tests"]]
    return Executable(files={"main.py": sub["code"]}, commands=commands, limits=limits,
                      should_early_stop=StopAtWrongAnswer([want for _, want in problem["tests"]]))


def postprocess(sub, result):
    tests = PROBLEMS[sub["problem"]]["tests"]
    verdict = "accepted"
    for i, r in enumerate(result.command_results):
        if r.timed_out:
            verdict = f"time limit on test {i + 1}"
        elif r.verdict == "memory_limit":
            verdict = f"memory limit on test {i + 1}"
        elif r.had_error:
            verdict = f"runtime error on test {i + 1}"
        elif r.stdout.split() != tests[i][1].split():
            verdict = f"wrong answer on test {i + 1}"
        else:
            continue
        break
    return {"problem": sub["problem"], "expected": sub["expected"], "verdict": verdict,
            "tests_run": len(result.command_results), "tests": len(tests)}


def main():
    subs = [{"problem": p, "expected": e, "code": c} for p, e, c in SUBMISSIONS]
    out = execute_predictions(ExecutionConfig(num_workers=2), subs, preprocess, postprocess)
    print(f"{'problem':<6} {'submission':<16} {'verdict':<26} tests run")
    for r in out.results:
        print(f"{r['problem']:<6} {r['expected']:<16} {r['verdict']:<26} {r['tests_run']}/{r['tests']}")


if __name__ == "__main__":
    main()
