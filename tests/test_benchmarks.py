"""Every benchmark script still starts: its flags parse against today's library (``--help``)."""

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name not in {"bare.py", "pipeline.py"})  # helpers


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_parses_its_flags(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/<script>` sees its helpers
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    main = runpy.run_path(str(BENCHMARKS / script), run_name="benchmark")["main"]
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out
