"""pip installs the package from the repo path, with nothing from the network."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def test_pip_install(tmp_path):
    # A copy, so that the build leaves nothing in the repo.
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("tests", "examples", "__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "--disable-pip-version-check", "--target", str(target), str(src)],
                   check=True, capture_output=True, env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"})
    code = ("import sandboxd, sandboxd.code_execution as ce; "
            "print(sandboxd.__file__); print(ce.execute_predictions.__name__, sandboxd.Client().socket)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(target)}, cwd=str(tmp_path)).stdout
    assert out.splitlines()[0].startswith(str(target))
    assert out.splitlines()[1].startswith("execute_predictions ")
