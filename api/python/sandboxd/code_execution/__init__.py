"""The ``code_execution`` API (simple-code-execution) with every program run
in a sandboxd sandbox. An evaluation script changes only its import:

    from sandboxd.code_execution import ExecutionConfig, Executable, Command, execute_predictions

See api/python/README.md, "Differences from code_execution", for what
behaves otherwise, and why.
"""

from .configs import ExecutionConfig
from .data_structures import (
    Command, CommandResult, CommandsToRun, Executable, ExecutionResult, OverallExecutionResults,
    default_should_early_stop,
)
from .entrypoints import default_postprocessor, execute_predictions

__all__ = [
    "ExecutionConfig", "Command", "CommandResult", "CommandsToRun", "Executable", "ExecutionResult",
    "OverallExecutionResults", "default_should_early_stop", "default_postprocessor", "execute_predictions",
]
