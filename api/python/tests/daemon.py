"""Starts a real sandboxd for the tests and the benchmark: ``sandboxd serve``
on a socket in a temp dir, with a state dir, a cgroup subtree and a uid
range of its own (keyed by this process's pid, as the Go tests do), so that
it meets no other daemon on the host. Stopping it (SIGTERM, then waiting for
its drain) removes the temp dir; the daemon also gets SIGTERM should this
process die first."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

from sandboxd import Client, UnreachableError  # noqa: E402

# Sandbox uids: a block of 512 per pid above 2,000,000,000, away from the
# default range and from the Go tests' blocks (1,900,000,000 + pid*512).
_UID_FLOOR = 2_000_000_000
_UID_BLOCK = 512


def _set_pdeathsig() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Daemon:
    """One sandboxd serve process; ``socket`` is where it listens."""

    def __init__(self, binary: Optional[str] = None, concurrency: int = 2, extra_config: str = "") -> None:
        self.binary = binary or os.environ.get("SANDBOXD_BIN") or os.path.join(REPO, "bin", "sandboxd")
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"no sandboxd binary at {self.binary}: run make build, or set SANDBOXD_BIN")
        self.dir = tempfile.mkdtemp(prefix="sandboxd-py-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "sandboxd.sock")
        self.log_path = os.path.join(self.dir, "sandboxd.log")
        pid = os.getpid()
        config = (
            f'state_dir = "{self.dir}/state"\n'
            f'cgroup_subtree = "sandboxd-py-{pid}"\n'
            f"uid_base = {_UID_FLOOR + pid * _UID_BLOCK + 1}\n"
            f"uid_count = {_UID_BLOCK - 1}\n"
            f"concurrency = {concurrency}\n"
            'log_format = "json"\n' + extra_config
        )
        os.mkdir(os.path.join(self.dir, "state"), 0o755)
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write(config)
        self._log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([self.binary, "serve", "--socket", self.socket, "--config", cfg],
                                         stdout=self._log, stderr=self._log, preexec_fn=_set_pdeathsig)
        except BaseException:
            self._cleanup()
            raise
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        c = Client(self.socket)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sandboxd exited with {self.proc.returncode}:\n{self.log()}")
                try:
                    c.ping()
                    return
                except (UnreachableError, OSError):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"sandboxd did not answer within {timeout:g}s:\n{self.log()}")
                    time.sleep(0.05)
        finally:
            c.close()

    def log(self) -> str:
        """What the daemon logged so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM, wait for the drain (SIGKILL after 30 s), remove the temp
        dir. Returns the daemon's exit status. Safe to call twice."""
        rc = 0
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        elif self.proc is not None:
            rc = self.proc.returncode
        self._cleanup()
        return rc

    def _cleanup(self) -> None:
        self._log.close() if hasattr(self, "_log") else None
        shutil.rmtree(self.dir, ignore_errors=True)
