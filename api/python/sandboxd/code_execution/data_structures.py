"""The data structures of the ``code_execution`` API, field for field, with
a few additions that only sandboxd can fill (each has a default, so code
written for the original builds them unchanged)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ..types import Limits

__all__ = [
    "Command", "CommandResult", "ExecutionResult", "Executable", "CommandsToRun",
    "OverallExecutionResults", "default_should_early_stop",
]


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of an Executable.

    command: argv (looked up in PATH inside the sandbox when it has no "/").
    timeout: seconds; None takes ExecutionConfig.default_timeout. It bounds
        both the command's wall time and its CPU time.
    num_times: run it this many times in a row, report the mean runtime;
        the first failing run stops the repetition and is the result.
    stdin: text, or a list of lines joined with "\\n".
    ignore_error: the default early-stop rule goes on after this command
        even when it fails.
    limits: (sandboxd) the sandbox's limits for this command, on top of
        ExecutionConfig.limits and Executable.limits: memory_bytes, pids,
        output_bytes, ... A wall_time_ms or cpu_time_ms given here wins over
        timeout.
    """

    command: List[str]
    timeout: Optional[float] = None
    num_times: int = 1
    stdin: Union[str, List[str]] = dataclasses.field(default_factory=list)
    ignore_error: bool = False
    limits: Optional[Limits] = None


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What one command did.

    return_code: the exit status; -N when signal N ended the program (as
        subprocess reports it), so a command killed at its timeout or its
        memory limit is -9, never 0.
    runtime: seconds by the clock (the mean over num_times runs).
    stdout, stderr: what it wrote, kept when it timed out; stdout passed
        through the Executable's stdout_postprocessor.
    timed_out: it passed its timeout (wall or CPU time).
    had_unexpected_error: it could not run as asked: it could not be
        started, the sandbox failed, or it broke a limit other than time
        (memory, output, a forbidden system call) while exiting 0.
    verdict: (sandboxd) the step's verdict: ok, nonzero_exit, signaled,
        wall_time_limit, cpu_time_limit, memory_limit, output_limit, ...
    """

    return_code: int
    runtime: float
    stdout: str
    stderr: str
    timed_out: bool
    had_unexpected_error: bool = False
    verdict: str = ""

    @property
    def had_error(self) -> bool:
        """A nonzero return code or an unexpected error."""
        return self.return_code != 0 or self.had_unexpected_error

    def __repr__(self) -> str:
        if self.timed_out:
            return f"CommandResult(return_code={self.return_code}, runtime={self.runtime}, timed_out=True)"
        out = self.stdout or self.stderr
        return f"CommandResult(return_code={self.return_code}, runtime={self.runtime}, output={out[:50]!r}...)"


@dataclasses.dataclass(frozen=True)
class ExecutionResult:
    """What one Executable did.

    key: (prediction index, index of the Executable among the prediction's).
    command_results: one per command that ran, in order (those after an
        early stop did not run and have none).
    elapsed: seconds from the first command's start to the tracked files
        read back.
    cwd: the working directory the commands ran in, inside the sandbox:
        "/workspace" (nothing of it is left on the host).
    tracked_files: path -> content, None for a file that is missing (or is
        not a regular file).
    expected_num_commands: how many commands the Executable had.
    writing_time: seconds the daemon took to set up the workspace and write
        the files. cleanup_time: 0.0 (the daemon removes the workspace after
        the result is sent). preprocess_time: seconds the preprocessor took.
    """

    key: Any
    command_results: List[CommandResult]
    elapsed: float
    cwd: Optional[str]
    tracked_files: Dict[str, Optional[str]]
    expected_num_commands: int
    writing_time: float = -1
    cleanup_time: float = -1
    preprocess_time: float = -1

    @property
    def timed_out(self) -> bool:
        """Whether the last command that ran timed out."""
        return bool(self.command_results) and self.command_results[-1].timed_out

    @property
    def had_error(self) -> bool:
        """Whether the last command that ran had a nonzero return code (True
        when none ran)."""
        if not self.command_results:
            return True
        return self.command_results[-1].return_code != 0

    @property
    def last_cmd(self) -> Optional[CommandResult]:
        """The last command result, or None."""
        return self.command_results[-1] if self.command_results else None

    def all_had_return_code(self, return_code: int) -> bool:
        """Whether every command that ran returned this code."""
        return all(r.return_code == return_code for r in self.command_results)

    def to_dict(self) -> Dict[str, Any]:
        """Every field, recursively, as plain data."""
        return dataclasses.asdict(self)

    @classmethod
    def invalid_result(cls, key: Any = None, num_commands: int = 1, runtime: float = 10.0,
                       return_code: int = 1, stdout: str = "SyntaxError", stderr: str = "Invalid",
                       elapsed: float = 10.0) -> "ExecutionResult":
        """A stand-in result for a prediction not worth running (a syntax
        error, say): return it from the preprocessor and the prediction is
        skipped, this result given to the postprocessor."""
        return cls(
            key=key,
            command_results=[CommandResult(return_code=return_code, runtime=runtime, stdout=stdout,
                                           stderr=stderr, timed_out=False)
                             for _ in range(num_commands)],
            elapsed=elapsed, cwd=None, tracked_files={}, expected_num_commands=num_commands,
        )

    def __getitem__(self, idx: int) -> CommandResult:
        return self.command_results[idx]

    def __len__(self) -> int:
        return len(self.command_results)


def default_should_early_stop(cmd_idx: int, res: CommandResult) -> bool:
    """The default rule: stop after a command that timed out, returned
    nonzero or had an unexpected error. sandboxd applies it itself (the
    job's stop_on), so no step after the failing one starts."""
    return res.timed_out or res.return_code != 0 or res.had_unexpected_error


@dataclasses.dataclass(frozen=True)
class Executable:
    """What to run for one prediction: files into a fresh workspace, then
    the commands in order.

    files: path -> text (bytes are sent as they are).
    commands: Command objects or dicts of their fields.
    tracked_files: workspace paths read back after the commands.
    ensure_all_run: run every command whatever fails (the default rule is
        off; a custom should_early_stop still applies).
    should_early_stop: (command index, CommandResult) -> bool; True stops
        the Executable after that command: later commands do not run.
    stdout_postprocessor: applied to each command's stdout before it is
        stored or given to should_early_stop.
    limits: (sandboxd) limits for every command of this Executable.
    """

    files: Dict[str, Union[str, bytes]]
    commands: List[Union[Command, Dict[str, Any]]]
    tracked_files: List[str] = dataclasses.field(default_factory=list)
    ensure_all_run: bool = False
    should_early_stop: Callable[[int, CommandResult], bool] = default_should_early_stop
    stdout_postprocessor: Optional[Callable[[str], str]] = None
    limits: Optional[Limits] = None

    def __post_init__(self) -> None:
        if not callable(self.should_early_stop):
            raise ValueError("should_early_stop must be callable")


@dataclasses.dataclass(frozen=True)
class CommandsToRun:
    """The original's internal form of an Executable, kept for code that
    names it; sandboxd has no working directory on the host, so ``cwd`` is
    the sandbox's."""

    cwd: str
    commands: List[Command]
    tracked_files: List[str] = dataclasses.field(default_factory=list)
    ensure_all_run: bool = False
    should_early_stop: Callable[[int, CommandResult], bool] = default_should_early_stop
    stdout_postprocessor: Optional[Callable[[str], str]] = None


@dataclasses.dataclass
class OverallExecutionResults:
    """What execute_predictions returns: the postprocessed ``results`` in
    the predictions' order, and the time each phase took, in seconds."""

    results: List[Dict]
    net_time: float
    pure_exec_time: float
    execution_time: float
    writing_time: float
    postprocessing_time: float
    preprocessing_time: float
    timestamp: Optional[str] = None

    def __post_init__(self) -> None:
        if self.timestamp is None:
            self.timestamp = datetime.datetime.now().isoformat()

    @property
    def timing_dict(self) -> Dict[str, Any]:
        """The timings and the timestamp, as a dict."""
        return {
            "net_time": self.net_time,
            "pure_exec_time": self.pure_exec_time,
            "execution_time": self.execution_time,
            "writing_time": self.writing_time,
            "postprocessing_time": self.postprocessing_time,
            "preprocessing_time": self.preprocessing_time,
            "timestamp": self.timestamp,
        }


Key = Tuple[int, int]
