"""The C++ package (CMake install, find_package and pkg-config consumers): runs .ci/native."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("cmake", "g++", "pkg-config")


@pytest.mark.slow
@pytest.mark.skipif(any(shutil.which(tool) is None for tool in TOOLS), reason=f"needs {', '.join(TOOLS)} on PATH")
def test_native_package_builds_installs_and_links():
    result = subprocess.run([str(ROOT / ".ci" / "native")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # Both consumers print the version from the installed headers: the one project() declares.
    version = re.search(r"project\(cnnx VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)
    assert result.stdout.count(f"cnnx {version}: loss") == 2, result.stdout[-4000:]
