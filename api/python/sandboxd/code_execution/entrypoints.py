"""execute_predictions on sandboxd: each Executable is one job, each of its
Commands one step (num_times steps for a repeated one), run in a fresh
sandbox over the job's private workspace.

Two ways to run an Executable, chosen per Executable:
  - With the default early-stop rule (or ensure_all_run and no callback),
    the daemon applies the rule itself (the job's stop_on: "failure" or
    "never"), and the Executables go through one POST /v1/batch at
    num_workers jobs at once. This is the fast path.
  - With a custom should_early_stop (or a Command with ignore_error), the
    job is streamed (POST /v1/run, one event per finished step) with
    stop_on "never" and pause_between_steps, num_workers streams at once:
    the daemon pauses the job after each step until it is told to go on.
    As each command ends the callback is asked; when it says stop the job
    is cancelled (DELETE /v1/runs/{id}), else continued (POST
    /v1/runs/{id}/continue). No step after the stop ever starts.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import json
import logging
import math
import os
import posixpath
import signal as _signal
import statistics
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from ..client import Client, Conflict, NotFound, SandboxdError
from ..progress import Progress
from ..types import File, Job, Limits, ProfileInfo, Result, Step, StepResult, job_verdict
from .configs import ExecutionConfig
from .data_structures import (
    Command, CommandResult, Executable, ExecutionResult, OverallExecutionResults,
    default_should_early_stop,
)

__all__ = ["execute_predictions", "default_postprocessor"]

logger = logging.getLogger(__name__)

Key = Tuple[int, int]
WORKSPACE = "/workspace"

# Verdicts whose message is added to stderr, as the program says nothing of them.
_NOTE_VERDICTS = ("memory_limit", "output_limit", "syscall_blocked", "exec_failed",
                  "internal_error", "cancelled")


def default_postprocessor(prediction: Dict, result: Union[ExecutionResult, List[ExecutionResult]],
                          **_: Any) -> Dict:
    """Merges result.to_dict() into the prediction; several results (a
    preprocessor that returns a list) go under "results"."""
    if isinstance(result, list):
        return {**prediction, "results": [r.to_dict() for r in result]}
    return {**prediction, **result.to_dict()}


# ---- planning ----------------------------------------------------------------

@dataclasses.dataclass
class _Plan:
    """One Executable made into a job."""
    key: Key
    executable: Executable
    commands: List[Command]
    step_command: List[int]           # step index -> command index
    job: Job
    streamed: bool                    # decided by the client (custom callback)
    tracked_names: Dict[str, str]     # the path sent -> the name the caller gave
    preprocess_time: float


def _limits_merge(*layers: Optional[Limits]) -> Limits:
    out = Limits()
    for layer in layers:
        if layer is None:
            continue
        for f in dataclasses.fields(Limits):
            v = getattr(layer, f.name)
            if v is not None:
                setattr(out, f.name, v)
    return out


def _clamp(limits: Limits, max_limits: Limits) -> Limits:
    for f in dataclasses.fields(Limits):
        v, m = getattr(limits, f.name), getattr(max_limits, f.name)
        if v is not None and m:
            setattr(limits, f.name, min(v, m))
    return limits


def _as_command(c: Union[Command, Dict[str, Any]], default_timeout: float) -> Command:
    if not isinstance(c, Command):
        c = Command(**c)
    if c.timeout is None:
        c = dataclasses.replace(c, timeout=default_timeout)
    if c.num_times < 1:
        raise ValueError(f"Command {c.command!r}: num_times must be at least 1, got {c.num_times}")
    return c


def _stdin_text(stdin: Union[str, List[str], None]) -> Optional[str]:
    if not stdin:
        return None
    if isinstance(stdin, (list, tuple)):
        return "\n".join(stdin)
    return stdin


def _wire_file(content: Union[str, bytes]) -> Union[str, File]:
    if isinstance(content, (bytes, bytearray)):
        return File(base64=base64.b64encode(bytes(content)).decode("ascii"))
    return content


def _plan(key: Key, exe: Executable, config: ExecutionConfig, profile: ProfileInfo,
          preprocess_time: float) -> _Plan:
    commands = [_as_command(c, config.default_timeout) for c in exe.commands]
    custom_rule = exe.should_early_stop is not default_should_early_stop
    ignores = any(c.ignore_error for c in commands)
    streamed = custom_rule or (ignores and not exe.ensure_all_run)
    steps: List[Step] = []
    step_command: List[int] = []
    for i, c in enumerate(commands):
        ms = max(1, math.ceil(float(c.timeout) * 1000))
        time_limits = Limits(cpu_time_ms=ms, wall_time_ms=ms)
        limits = _clamp(_limits_merge(time_limits, config.limits, exe.limits, c.limits), profile.max_limits)
        stdin = _stdin_text(c.stdin)
        for _ in range(c.num_times):
            steps.append(Step(argv=list(c.command), stdin=stdin, limits=limits))
            step_command.append(i)
    tracked_names: Dict[str, str] = {}
    for name in exe.tracked_files:
        tracked_names.setdefault(posixpath.normpath(name), name)
    job = Job(
        key=list(key),
        profile=config.profile,
        files={name: _wire_file(content) for name, content in exe.files.items()} or None,
        steps=steps,
        stop_on="never" if streamed or exe.ensure_all_run else "failure",
        tracked_files=list(tracked_names) or None,
        pause_between_steps=True if streamed else None,
    )
    return _Plan(key, exe, commands, step_command, job, streamed, tracked_names, preprocess_time)


# ---- results -----------------------------------------------------------------

def _return_code(s: StepResult) -> int:
    if s.signal:
        try:
            return -int(_signal.Signals[s.signal])
        except KeyError:
            return -1
    return s.exit_code


def _command_result(s: StepResult, postprocess: Optional[Callable[[str], str]]) -> CommandResult:
    v = s.verdict
    timed_out = v in ("wall_time_limit", "cpu_time_limit")
    rc = _return_code(s)
    unexpected = v in ("exec_failed", "internal_error", "cancelled", "skipped") or (v != "ok" and rc == 0)
    if v in ("exec_failed", "internal_error", "cancelled", "skipped") and rc == 0:
        rc = -1
    stderr = s.stderr
    if v in _NOTE_VERDICTS:
        note = f"sandboxd: {v}" + (f": {s.message}" if s.message else "")
        stderr = stderr + ("\n" if stderr and not stderr.endswith("\n") else "") + note
    stdout = s.stdout
    if postprocess is not None:
        stdout = postprocess(stdout)
    return CommandResult(return_code=rc, runtime=s.wall_time_ms / 1000.0, stdout=stdout, stderr=stderr,
                         timed_out=timed_out, had_unexpected_error=unexpected, verdict=v)


def _failed(r: CommandResult) -> bool:
    return r.timed_out or r.return_code != 0 or r.had_unexpected_error


def _fold_repeats(runs: List[CommandResult]) -> CommandResult:
    """num_times runs of one command: the first failing run as it is, else
    the last run with the mean runtime."""
    for r in runs:
        if _failed(r):
            return r
    if len(runs) == 1:
        return runs[0]
    return dataclasses.replace(runs[-1], runtime=statistics.fmean(r.runtime for r in runs))


class _CommandFolder:
    """Turns step results, in order, into command results: a command is
    done at its first failing run or after its last run."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.results: List[CommandResult] = []
        self._runs: List[CommandResult] = []
        self._cmd = 0

    def add(self, step: int, s: StepResult) -> Optional[CommandResult]:
        """Takes step's result; returns the command's result when this step
        finished its command (later runs of a command that failed are
        ignored)."""
        cmd = self.plan.step_command[step]
        if cmd < self._cmd or s.verdict == "skipped":
            return None
        if cmd > self._cmd:  # runs after a failed one, never folded
            self._runs, self._cmd = [], cmd
        self._runs.append(_command_result(s, self.plan.executable.stdout_postprocessor))
        last_run = step + 1 >= len(self.plan.step_command) or self.plan.step_command[step + 1] != cmd
        if _failed(self._runs[-1]) or last_run:
            r = _fold_repeats(self._runs)
            self.results.append(r)
            self._runs, self._cmd = [], cmd + 1
            return r
        return None


def _execution_result(plan: _Plan, result: Optional[Result], commands: List[CommandResult],
                      error: Optional[str] = None) -> ExecutionResult:
    tracked: Dict[str, Optional[str]] = {name: None for name in plan.executable.tracked_files}
    elapsed = writing = 0.0
    if result is not None:
        for path, tf in (result.files or {}).items():
            tracked[plan.tracked_names.get(path, path)] = None if tf is None else tf.content
        t = result.timing
        writing = t.setup_ms / 1000.0
        elapsed = max(0.0, (t.total_ms - t.queued_ms - t.setup_ms) / 1000.0)
        if result.status == "error" and not any(c.had_unexpected_error for c in commands):
            error = error or result.message or "the sandbox failed"
    if error is not None:
        commands = commands + [CommandResult(return_code=-1, runtime=0.0, stdout="",
                                             stderr=f"sandboxd: {error}", timed_out=False,
                                             had_unexpected_error=True, verdict="internal_error")]
    return ExecutionResult(key=plan.key, command_results=commands, elapsed=elapsed, cwd=WORKSPACE,
                           tracked_files=tracked, expected_num_commands=len(plan.commands),
                           writing_time=writing, cleanup_time=0.0, preprocess_time=plan.preprocess_time)


def _from_batch(plan: _Plan, result: Optional[Result], error: Optional[str]) -> ExecutionResult:
    if result is None:
        return _execution_result(plan, None, [], error=error or "the job was refused")
    folder = _CommandFolder(plan)
    for i, s in enumerate(result.steps):
        folder.add(i, s)
    return _execution_result(plan, result, folder.results)


def _run_streamed(client: Client, plan: _Plan) -> Tuple[ExecutionResult, str]:
    exe = plan.executable
    folder = _CommandFolder(plan)
    stopped = False
    stream = client.stream(plan.job)
    with stream:
        for ev in stream:
            if ev.event != "step_finished" or stopped:
                continue
            step = ev.step or 0
            r = folder.add(step, ev.result)  # type: ignore[arg-type]
            stop = False
            if r is not None:
                idx = len(folder.results) - 1
                if exe.should_early_stop is default_should_early_stop:
                    stop = (not exe.ensure_all_run and not plan.commands[idx].ignore_error
                            and default_should_early_stop(idx, r))
                else:
                    stop = bool(exe.should_early_stop(idx, r))
                stop = stop and idx + 1 < len(plan.commands)
            if step + 1 >= len(plan.job.steps):
                continue  # the last step: the job ends without a pause
            # The job is paused until it is told: on, or stop (the steps
            # after are skipped, none started).
            try:
                if stop:
                    stopped = True
                    client.cancel(stream.id or "")
                else:
                    client.continue_run(stream.id or "")
            except (Conflict, NotFound):
                pass  # it ended on its own meanwhile
    res = stream.result
    verdict = job_verdict(res) if res is not None else "internal_error"
    if stopped and res is not None:
        verdict = next((c.verdict for c in folder.results if c.verdict != "ok"), "ok")
        res = dataclasses.replace(res, status="completed")
    return _execution_result(plan, res, folder.results), verdict


# ---- the entry point -------------------------------------------------------------

def _preprocess(pred_list: List[Dict], preprocessor: Callable, returns_list: bool, config: ExecutionConfig,
                profile: ProfileInfo) -> Tuple[List[_Plan], Dict[Key, ExecutionResult], Dict[int, int]]:
    plans: List[_Plan] = []
    skipped: Dict[Key, ExecutionResult] = {}
    per_pred: Dict[int, int] = {}
    for idx, pred in enumerate(pred_list):
        t0 = time.perf_counter()
        out = preprocessor(pred)
        dt = time.perf_counter() - t0
        items = list(out) if returns_list else [out]
        per_pred[idx] = len(items)
        for sub, item in enumerate(items):
            key = (idx, sub)
            if isinstance(item, ExecutionResult):
                skipped[key] = dataclasses.replace(item, key=key, preprocess_time=dt)
            elif isinstance(item, Executable):
                plans.append(_plan(key, item, config, profile, dt))
            else:
                raise TypeError(f"prediction {idx}: the preprocessor returned {type(item).__name__}, "
                                "not an Executable or an ExecutionResult")
    return plans, skipped, per_pred


def _write_debug(debug_dir: str, plan: _Plan) -> None:
    d = os.path.join(debug_dir, f"pred{plan.key[0]}.{plan.key[1]}")
    for name, content in plan.executable.files.items():
        path = os.path.join(d, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content if isinstance(content, (bytes, bytearray)) else content.encode("utf-8"))
    with open(os.path.join(d, "job.json"), "w") as f:
        json.dump(plan.job.to_dict(), f, indent=1)


def _write_error(error_directory: str, plan: _Plan, result: ExecutionResult) -> None:
    os.makedirs(error_directory, exist_ok=True)
    with open(os.path.join(error_directory, f"{plan.key[0]}.{plan.key[1]}.json"), "w") as f:
        json.dump({"job": plan.job.to_dict(), "result": result.to_dict()}, f, indent=1, default=str)


def execute_predictions(
    config: ExecutionConfig,
    pred_list: List[Dict],
    preprocessor: Callable[[Dict], Union[Executable, ExecutionResult, List[Union[Executable, ExecutionResult]]]],
    postprocessor: Optional[Callable[[Dict, Any], Dict]] = None,
    debug_dir: Optional[str] = None,
    preproc_returns_list: bool = False,
    preproc_batch_size: int = 1,
    error_directory: Optional[str] = None,
) -> OverallExecutionResults:
    """Runs every prediction's Executable(s) in sandboxes and returns the
    postprocessed predictions in input order.

    preprocessor(prediction) gives an Executable, an ExecutionResult (the
    prediction is not run; see ExecutionResult.invalid_result), or with
    preproc_returns_list a list of them, whose results the postprocessor
    gets as a list, in order. postprocessor(prediction, result) returns the
    dict kept (default: the prediction with result.to_dict() merged in);
    each gets a "postprocess_time". debug_dir: each Executable's files and
    job are also written to debug_dir/pred{idx}.{sub}/ and kept (the run is
    still in the sandbox). error_directory: each Executable whose result has
    an unexpected error is written there as JSON. preproc_batch_size is
    accepted and ignored (preprocessing runs in this process).
    """
    t_start = time.perf_counter()
    postprocessor = postprocessor or default_postprocessor
    client = Client(config.socket)
    try:
        info = client.info()
        profile = info.profile(config.profile or "default")
        concurrency = config.num_workers if config.num_workers >= 1 else info.pool.concurrency

        t0 = time.perf_counter()
        plans, results, per_pred = _preprocess(pred_list, preprocessor, preproc_returns_list, config, profile)
        preprocessing_time = time.perf_counter() - t0
        if debug_dir is not None:
            for p in plans:
                _write_debug(str(debug_dir), p)

        t0 = time.perf_counter()
        progress = Progress(len(plans), desc="Executing", enabled=not config.disable_tqdm)
        done = 0

        def finished(plan: _Plan, r: ExecutionResult, verdict: str) -> None:
            nonlocal done
            results[plan.key] = r
            progress.update(verdict)
            done += 1
            if config.disable_tqdm and config.log_freq > 0 and done % config.log_freq == 0:
                logger.info("executed %d/%d", done, len(plans))
            if error_directory is not None and any(c.had_unexpected_error for c in r.command_results):
                _write_error(str(error_directory), plan, r)

        try:
            batched = [p for p in plans if not p.streamed]
            chunk = config.max_execute_at_once if config.max_execute_at_once > 0 else max(1, len(batched))
            for start in range(0, len(batched), chunk):
                part = batched[start:start + chunk]
                stream = client.batch((p.job for p in part), concurrency=concurrency, progress=False,
                                      total=len(part))
                for item in stream:
                    plan = part[item.index]
                    err = None if item.error is None else f"{item.error.code}: {item.error.message}"
                    r = _from_batch(plan, item.result, err)
                    finished(plan, r, item.verdict)
            streamed = [p for p in plans if p.streamed]
            if streamed:
                with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
                    futures = {pool.submit(_run_streamed, client, p): p for p in streamed}
                    for fut in concurrent.futures.as_completed(futures):
                        r, verdict = fut.result()
                        finished(futures[fut], r, verdict)
        finally:
            progress.close()
        execution_time = time.perf_counter() - t0
    finally:
        client.close()

    t0 = time.perf_counter()
    out: List[Dict] = []
    for idx, pred in enumerate(pred_list):
        if preproc_returns_list:
            res: Any = [results[(idx, sub)] for sub in range(per_pred[idx])]
        else:
            res = results[(idx, 0)]
        t1 = time.perf_counter()
        processed = postprocessor(pred, res)
        processed["postprocess_time"] = time.perf_counter() - t1
        out.append(processed)
    postprocessing_time = time.perf_counter() - t0

    writing_time = sum(r.writing_time for r in results.values() if r.writing_time > 0)
    return OverallExecutionResults(
        results=out,
        net_time=time.perf_counter() - t_start,
        pure_exec_time=execution_time,
        execution_time=execution_time,
        writing_time=writing_time,
        postprocessing_time=postprocessing_time,
        preprocessing_time=preprocessing_time,
    )
