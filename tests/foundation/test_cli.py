"""The command line: help texts, one-line errors, inspect/fixture/export/verify."""
import json
import subprocess
import sys

import pytest

from exporter.cli import main


def run_cli(*args):
    """Run `sentis-tts ARGS` in-process through main(); returns (exit code, stdout+stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        else:  # pragma: no cover - main always exits
            code = 0
    return code, out.getvalue() + err.getvalue()


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "exporter.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for cmd in ("demo", "export", "check", "convert", "inspect", "verify", "fixture"):
        assert cmd in r.stdout


@pytest.mark.parametrize("cmd", ["export", "check", "convert", "inspect", "demo", "fixture", "verify"])
def test_every_command_explains_itself(cmd):
    code, out = run_cli(cmd, "--help")
    assert code == 0 and "Usage:" in out and len(out) > 200


def test_errors_are_one_line(tmp_path, tiny_model_dir):
    code, out = run_cli("inspect", "--model-dir", str(tmp_path / "nope"))
    assert code == 1 and out.strip() == f"error: model directory not found: {tmp_path / 'nope'}"
    code, out = run_cli("export", "all", "--model-dir", str(tmp_path), "--out", str(tmp_path / "b"))
    assert code == 1 and "not a model directory of a known family" in out and "model.json" in out and out.count("\n") == 1
    code, out = run_cli("export", "bogus", "--model-dir", str(tiny_model_dir), "--out", str(tmp_path / "b"))
    assert code == 1 and "unknown cosyvoice2 component(s) bogus" in out and out.count("\n") == 1
    code, out = run_cli("verify", "--bundle", str(tmp_path))
    assert code == 1 and "no manifest.json" in out


def test_inspect_json(tiny_model_dir):
    code, out = run_cli("inspect", "--model-dir", str(tiny_model_dir), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["config"]["llm"]["qwen"]["hidden_size"] == 64 and d["files"]["llm"] == "llm.pt"


def test_fixture_command(tmp_path):
    code, out = run_cli("fixture", "--out", str(tmp_path / "m"), "--format", "safetensors")
    assert code == 0 and (tmp_path / "m" / "flow.safetensors").is_file()
    code, out = run_cli("fixture", "--out", str(tmp_path / "m"))
    assert code == 1 and "--overwrite" in out
