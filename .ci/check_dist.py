"""Build the wheel and the sdist as a release would (``python -m build``),
check that they hold what they must, and run ``twine check`` on them.

Built from a copy of the tree, as a fresh clone would be: a build writes its
egg-info and build directory beside the sources, which the test run that
``.ci/run`` has going at the same time must not see half-written."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IN_WHEEL = ["llmclients/__init__.py", "llmclients/py.typed", "llmclients/testing/pytest_plugin.py", "licenses/LICENSE"]
#: What a build writes, and what a clone does not have.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.log")
IN_SDIST = ["README.rst", "LICENSE", "setup.cfg", "pyproject.toml", "llmclients/py.typed", "tests/conftest.py"]


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        source, out = Path(scratch, "source"), str(Path(scratch, "dist"))
        shutil.copytree(ROOT, source, ignore=NOT_COPIED)
        built = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", out, str(source)], capture_output=True, text=True
        )
        if built.returncode:
            print(built.stdout, built.stderr, sep="\n")
            return 1
        wheel, sdist = next(Path(out).glob("*.whl")), next(Path(out).glob("*.tar.gz"))
        with zipfile.ZipFile(wheel) as archive:
            in_wheel = archive.namelist()
        with tarfile.open(sdist) as archive:
            in_sdist = [name.split("/", 1)[-1] for name in archive.getnames()]
        missing = [f"{wheel.name}: {name}" for name in IN_WHEEL if not any(n.endswith(name) for n in in_wheel)]
        missing += [f"{sdist.name}: {name}" for name in IN_SDIST if name not in in_sdist]
        missing += [f"{wheel.name} holds {name}" for name in in_wheel if name.startswith("tests/")]
        for problem in missing:
            print(f"missing or misplaced: {problem}")
        checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
        print(f"{wheel.name} ({len(in_wheel)} files), {sdist.name} ({len(in_sdist)} entries)")
        return 1 if missing or checked.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
