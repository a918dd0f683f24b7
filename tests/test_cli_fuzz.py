"""The command line driven with random arguments (hypothesis): every run ends with exit code 0 or 2
and at most one line on stderr, never a traceback. The heavy parts (training epochs, the demo's
simulations) are replaced by no-ops, downloads fail at once; argument handling and validation run."""

from __future__ import annotations

import urllib.error

import pytest

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

VALUES = st.one_of(st.integers(-3, 6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["2**-12", "0", "-1", "nan", "inf", "1e309", "", "abc", "x=1", "n_train=8",
                                    "delay=abc", "n_lif=abc", "tau_m=-1", "cosine", "step", "zero"]),
                   st.text("abcxyz019=-._/", max_size=6))
OPTIONS = {
    "train": ["--epochs", "--batch-size", "--lr", "--lr-schedule", "--lr-decay", "--lr-step-epochs", "--lr-min",
              "--grad-clip", "--seed", "--threads", "--max-batches", "--time-budget", "--rate-weight",
              "--rate-target", "--loss-mode", "--window", "--task-opt", "--model-opt", "--neurons", "--deep-r", "--root"],
    "eval": ["--n-test", "--batch-size", "--threads", "--quantize", "--root"],
    "demo": ["--threads", "--steps", "--trials", "--seed", "--network"],
}
FIRST = {"train": st.sampled_from(["memory", "smnist", "fsdd", "jv", "bogus", ""]),
         "eval": st.sampled_from(["missing.pt", ".", "README.md"]), "demo": st.just(None)}


@st.composite
def argvs(draw):
    cmd = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [cmd]
    first = draw(FIRST[cmd])
    if first is not None:
        argv.append(first)
    for opt in draw(st.lists(st.sampled_from(OPTIONS[cmd]), max_size=4)):
        argv += [opt, draw(VALUES)]
    if draw(st.booleans()):
        argv.append(draw(st.sampled_from(["--no-progress", "--kernel", "--no-plot", "--no-loihi", "--bogus"])))
    return argv


@pytest.fixture
def quick_cli(tmp_path, monkeypatch):
    import ahpsim.datasets._common as common
    import ahpsim.demo as demo
    from ahpsim.torch import trainer

    def no_network(*a, **k):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(common, "_urlopen", no_network)
    monkeypatch.setattr(trainer.Trainer, "fit", lambda self, *a, **k: [])
    monkeypatch.setattr(demo, "_trained", lambda *a, **k: {})
    monkeypatch.setattr(demo, "_random", lambda *a, **k: {})
    monkeypatch.setenv("AHPSIM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AHPSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("AHPSIM_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argvs())
def test_random_command_lines_exit_0_or_2_without_traceback(quick_cli, capsys, argv):
    from ahpsim.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors and --help
        code = e.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        lines = [ln for ln in err.strip().splitlines() if not ln.startswith("usage:") and not ln.startswith(" ")]
        assert len(lines) == 1, (argv, err)
