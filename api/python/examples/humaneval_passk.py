"""A HumanEval-style pass@k evaluation on sandboxd, written against the
code_execution API: only the import names sandboxd.

Three toy problems, each with five completions: right ones, wrong ones, a
slow one (an infinite loop, stopped at its timeout), a memory-hungry one
(stopped at the sandbox's memory limit) and a malicious one (reads the host's
files, forks, opens the network: each fails inside its sandbox). Each
completion runs its problem's tests; pass@1 and pass@5 are printed per
problem, with unbiased pass@k.

    SANDBOXD_SOCKET=run/sandboxd.sock python3 api/python/examples/humaneval_passk.py
"""

import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sandboxd import Limits  # noqa: E402
from sandboxd.code_execution import Command, ExecutionConfig, Executable, ExecutionResult, execute_predictions  # noqa: E402

PROBLEMS = {
    "add": {
        "prompt": "def add(a, b):\n",
        "test": "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n",
    },
    "is_palindrome": {
        "prompt": "def is_palindrome(s):\n",
        "test": "assert is_palindrome('abba')\nassert not is_palindrome('ab')\nassert is_palindrome('')\n",
    },
    "fib": {
        "prompt": "def fib(n):\n",
        "test": "assert [fib(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]\nassert fib(30) == 832040\n",
    },
}

MALICIOUS = (
    "    import os, socket\n"
    "    print(open('/etc/shadow').read())\n"
    "    socket.create_connection(('1.1.1.1', 80), timeout=1)\n"
)

COMPLETIONS = {
    "add": [
        "    return a + b\n",
        "    return a - b\n",                                # wrong
        "    while True:\n        pass\n",                   # slow
        "    x = bytearray(1 << 30)\n    return a + b\n",    # memory-hungry
        MALICIOUS + "    return a + b\n",                    # malicious
    ],
    "is_palindrome": [
        "    return s == s[::-1]\n",
        "    return s == ''.join(reversed(s))\n",
        "    return s[0] == s[-1]\n",                        # wrong (and crashes on '')
        "    import os\n    for _ in range(1000):\n        os.fork()\n    return s == s[::-1]\n",  # fork bomb
        "    return True\n",                                 # wrong
    ],
    "fib": [
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",  # right, if slow
        "    return n\n",                                    # wrong
        "    return fib(n - 1) + fib(n - 2)\n",              # recursion error
        "    return n +\n",                                 # syntax error: skipped
    ],
}


def preprocess(pred):
    code = PROBLEMS[pred["task_id"]]["prompt"] + pred["completion"]
    try:
        compile(code, "solution.py", "exec")
    except SyntaxError:
        return ExecutionResult.invalid_result()
    program = code + "\n" + PROBLEMS[pred["task_id"]]["test"] + "print('PASSED')\n"
    return Executable(files={"solution.py": program},
                      commands=[Command(["python3", "solution.py"], timeout=3)])


def postprocess(pred, result):
    last = result.last_cmd
    return {**pred, "passed": last is not None and last.return_code == 0 and "PASSED" in last.stdout,
            "verdict": last.verdict if last is not None and last.verdict else "invalid"}


def pass_at_k(n, c, k):
    """The unbiased estimator: 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def main():
    preds = [{"task_id": t, "completion_id": i, "completion": c}
             for t, cs in COMPLETIONS.items() for i, c in enumerate(cs)]
    config = ExecutionConfig(num_workers=2, limits=Limits(memory_bytes=256 << 20))
    out = execute_predictions(config, preds, preprocess, postprocess)
    by_task = defaultdict(list)
    for r in out.results:
        by_task[r["task_id"]].append(r)
    print(f"{'problem':<15} {'n':>2} {'c':>2} {'pass@1':>7} {'pass@5':>7}  verdicts")
    for task, rs in by_task.items():
        n, c = len(rs), sum(r["passed"] for r in rs)
        verdicts = ", ".join(f"{r['completion_id']}:{'PASS' if r['passed'] else r['verdict']}" for r in rs)
        print(f"{task:<15} {n:>2} {c:>2} {pass_at_k(n, c, 1):>7.2f} {pass_at_k(n, c, 5):>7.2f}  {verdicts}")
    total = sum(pass_at_k(len(rs), sum(r["passed"] for r in rs), 1) for rs in by_task.values()) / len(by_task)
    print(f"mean pass@1: {total:.3f}  ({out.net_time:.1f} s)")


if __name__ == "__main__":
    main()
