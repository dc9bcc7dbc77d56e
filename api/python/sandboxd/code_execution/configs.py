"""ExecutionConfig: the original's fields and defaults, and what each means
on sandboxd."""

from __future__ import annotations

import dataclasses
from typing import Optional

from ..types import Limits

__all__ = ["ExecutionConfig"]


@dataclasses.dataclass
class ExecutionConfig:
    """How execute_predictions runs.

    num_workers: how many Executables run at once: the batch's concurrency
        (the daemon never runs more than its own ``concurrency``). Honoured
        as given; below 1 means the daemon's concurrency.
    default_timeout: seconds, for a Command without a timeout.
    max_execute_at_once: above 0, the Executables go to the daemon in
        batches of at most this many, one after the other.
    disable_tqdm: no progress display; a log line every log_freq results
        instead.
    log_freq: see disable_tqdm.
    max_tasks_per_process, write_rate_limit, chunk_size, batch_size,
        num_executors, buffer_size, display_write_progress, write_log_freq:
        accepted and ignored: they tune the original's process pools and
        file writing, which sandboxd does not have (the daemon writes each
        job's files into its workspace).

    sandboxd's own (optional):
    socket: the daemon's socket (default $SANDBOXD_SOCKET, then
        /run/sandboxd/sandboxd.sock).
    profile: the daemon profile the jobs use.
    limits: limits for every command (memory_bytes, pids, ...); an
        Executable's and a Command's own win over them.
    """

    num_workers: int
    max_tasks_per_process: Optional[int] = None
    write_rate_limit: int = 768
    chunk_size: int = 1
    batch_size: int = 1
    disable_tqdm: bool = False
    default_timeout: float = 10
    max_execute_at_once: int = -1
    num_executors: int = 4
    log_freq: int = 1000
    buffer_size: int = 100
    display_write_progress: bool = False
    write_log_freq: int = 100_000
    socket: Optional[str] = None
    profile: Optional[str] = None
    limits: Optional[Limits] = None

    @property
    def batched(self) -> bool:
        """Whether batch_size is above 1 (kept for code that reads it)."""
        return self.batch_size > 1
