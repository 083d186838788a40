"""The Unity package's C# outside Unity: Core compiled with Mono's `mcs` and run against the golden
traces (tests/golden), the Sentis/Unity/Editor layers compiled against hand-written API stubs
(a compile check only — no Unity behaviour is tested here; see docs/unity.md)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "unity_package"
GOLDEN = ROOT / "tests" / "golden"
STUBS = Path(__file__).resolve().parent / "stubs"

MCS = shutil.which("mcs")
MONO = shutil.which("mono")
needs_mono = pytest.mark.skipif(not (MCS and MONO), reason="Mono's mcs/mono are not installed here "
                                "(CI installs them in .ci/run: apt-get install mono-mcs)")


def sources(*dirs: Path) -> list[str]:
    return sorted(str(p) for d in dirs for p in d.rglob("*.cs"))


def mcs(out: Path, srcs: list[str], *, target: str = "library", refs: list[Path] = (), defines: str = "") -> None:
    cmd = [MCS, f"-target:{target}", f"-out:{out}", "-nologo", "-warnaserror+", "-nowarn:1591,0618,0649,0169,0414", "-r:System.Numerics"]
    cmd += [f"-r:{r}" for r in refs]
    if defines:
        cmd.append(f"-define:{defines}")
    res = subprocess.run(cmd + srcs, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"mcs failed for {out.name}:\n{res.stdout}\n{res.stderr}"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    d = tmp_path_factory.mktemp("csharp")
    core = d / "SentisTts.Core.dll"
    mcs(core, sources(PKG / "Runtime" / "Core"))
    return d


def _write_bundle(d: Path, corrupt: bool) -> None:
    """A bundle folder whose manifest hashes are computed here with hashlib (independent of C#)."""
    d.mkdir(parents=True)
    (d / "text").mkdir()
    files = {"a.onnx": b"\x08\x07graph-bytes", "text/vocab.json": '{"a": 0, "é": 1}'.encode(), "text/merges.txt": b"a b\n"}
    for rel, data in files.items():
        (d / rel).write_bytes(data)
    digest = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    manifest = {"schema_version": 1, "constants": {"sample_rate": 24000}, "components": {},
                "graphs": {"a": {"component": "x", "file": "a.onnx", "sha256": digest["a.onnx"],
                                 "inputs": [{"name": "x", "shape": [1, "n"], "dtype": "int32"}],
                                 "outputs": [{"name": "y", "shape": [1, "n", 4], "dtype": "float32"}]}},
                "files": {rel: {"sha256": digest[rel]} for rel in ("text/vocab.json", "text/merges.txt")}}
    (d / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if corrupt:
        (d / "a.onnx").write_bytes(b"tampered")
        (d / "text" / "merges.txt").unlink()


@needs_mono
def test_core_against_golden_traces(build, tmp_path):
    exe = build / "CoreTests.exe"
    mcs(exe, sources(PKG / "Tests" / "Standalone~"), target="exe", refs=[build / "SentisTts.Core.dll"])
    _write_bundle(tmp_path / "bundle_ok", corrupt=False)
    _write_bundle(tmp_path / "bundle_bad", corrupt=True)
    res = subprocess.run([MONO, str(exe), str(GOLDEN), str(tmp_path)], capture_output=True, text=True, timeout=120,
                         cwd=build)
    out = res.stdout.strip().splitlines()
    assert out, res.stderr
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", out[-1])
    assert m, f"last line is not 'N passed, N failed':\n{res.stdout}\n{res.stderr}"
    failures = [line for line in out if line.startswith("FAIL")]
    assert int(m.group(2)) == 0 and not failures, "\n".join(out)
    # every golden trace file ran (a trace kind the program does not know fails there)
    golden_files = [p for p in GOLDEN.glob("*.json") if json.loads(p.read_text(encoding="utf-8"))["kind"] != "voice"]
    assert sum(1 for line in out if line.startswith("PASS golden ")) == len(golden_files)
    assert int(m.group(1)) >= 7 + len(golden_files)
    assert res.returncode == 0


@needs_mono
@pytest.mark.parametrize("version", ["2.2.0", "2.4.0"])
def test_sentis_unity_editor_layers_compile_against_stubs(build, version, tmp_path):
    """Compile check only: every Unity.InferenceEngine name/signature the package uses exists in the
    real API of that version (stubs generated from shared/reference/sentis_api by gen_sentis_stubs);
    UnityEngine/UnityEditor/NUnit names against hand-written stubs."""
    d = tmp_path
    stubs = d / "StubApis.dll"
    mcs(stubs, [str(STUBS / "generated" / f"InferenceEngine_{version}.g.cs")]
        + sorted(str(p) for p in STUBS.glob("*.cs")))
    core = build / "SentisTts.Core.dll"
    sentis = d / "SentisTts.Sentis.dll"
    mcs(sentis, sources(PKG / "Runtime" / "Sentis"), refs=[core, stubs])
    unity = d / "SentisTts.Unity.dll"
    mcs(unity, sources(PKG / "Runtime" / "Unity"), refs=[core, sentis, stubs])
    editor = d / "SentisTts.Editor.dll"
    mcs(editor, sources(PKG / "Editor"), refs=[core, sentis, unity, stubs])
    samples = d / "Samples.dll"
    mcs(samples, sources(PKG / "Samples~"), refs=[core, sentis, unity, stubs])
    tests = d / "EditModeTests.dll"
    mcs(tests, sources(PKG / "Tests" / "Editor"), refs=[core, stubs])
    # the import dialog's answers (1 = Cancel or the dialog closed) -> precision, run for real
    prog = d / "Dialog.cs"
    prog.write_text("""
using System; using SentisTts.Editor;
static class P { static int Main() {
  int asked = 0; Func<int> second2 = () => { asked++; return 2; }; Func<int> second1 = () => { asked++; return 1; }; Func<int> second0 = () => { asked++; return 0; };
  bool ok = BundleImporter.QuantizationFromDialogs(0, second2) == WeightQuantization.Recommended && asked == 0
         && BundleImporter.QuantizationFromDialogs(1, second2) == null && asked == 0
         && BundleImporter.QuantizationFromDialogs(2, second0) == WeightQuantization.None
         && BundleImporter.QuantizationFromDialogs(2, second2) == WeightQuantization.Uint8
         && BundleImporter.QuantizationFromDialogs(2, second1) == null && asked == 3
         && BundleImporter.ForGraph(WeightQuantization.Recommended, "llm", "llm_step") == WeightQuantization.Float16
         && BundleImporter.ForGraph(WeightQuantization.Recommended, "llm", "llm_cache_append") == WeightQuantization.None
         && BundleImporter.ForGraph(WeightQuantization.Recommended, "flow", "flow_solve_256") == WeightQuantization.Float16
         && BundleImporter.ForGraph(WeightQuantization.Recommended, "hift", "hift") == WeightQuantization.None
         && BundleImporter.ForGraph(WeightQuantization.Uint8, "hift", "hift") == WeightQuantization.Uint8;
  Console.WriteLine(ok ? "ok" : "wrong"); return ok ? 0 : 1; } }
""", encoding="utf-8")
    exe = d / "Dialog.exe"
    mcs(exe, [str(prog)], target="exe", refs=[editor, stubs])
    shutil.copy(core, d / core.name)
    res = subprocess.run([MONO, str(exe)], capture_output=True, text=True, timeout=60, cwd=d)
    assert res.stdout.strip() == "ok", res.stdout + res.stderr


def test_generated_sentis_stubs_are_current():
    """The committed stubs are what the generator writes from the real API data."""
    from . import gen_sentis_stubs as g

    if not g.DEFAULT_API_DIR.is_dir():
        pytest.skip(f"the extracted Sentis API ({g.DEFAULT_API_DIR}) is not on this machine; the committed stubs are used as they are")
    for v in g.VERSIONS:
        api = json.loads((g.DEFAULT_API_DIR / f"sentis_api_{v}.json").read_text(encoding="utf-8"))
        assert (g.OUT / f"InferenceEngine_{v}.g.cs").read_text(encoding="utf-8") == g.generate(api), \
            f"run `python -m tests.unity.gen_sentis_stubs`: stubs for {v} are stale"


def test_upm_layout():
    """package.json / asmdefs follow the UPM conventions (docs: Unity manual, custom package layout)."""
    pkg = json.loads((PKG / "package.json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"com(\.[a-z0-9][a-z0-9-]*){2,}", pkg["name"]) and pkg["name"] == pkg["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", pkg["version"])
    assert pkg["unity"] == "6000.0"
    dep = pkg["dependencies"]["com.unity.ai.inference"]
    assert tuple(int(x) for x in dep.split(".")[:2]) >= (2, 2)
    for s in pkg["samples"]:
        assert s["path"].startswith("Samples~/") and (PKG / s["path"]).is_dir()
    for f in ("CHANGELOG.md", "LICENSE.md", "README.md", "Documentation~/index.md"):
        assert (PKG / f).is_file(), f
    asmdefs = {p.relative_to(PKG).as_posix(): json.loads(p.read_text()) for p in PKG.rglob("*.asmdef")}
    names = {a["name"] for a in asmdefs.values()}
    assert {"SentisTts.Core", "SentisTts.Sentis", "SentisTts.Unity", "SentisTts.Editor", "SentisTts.Editor.Tests"} <= names
    assert asmdefs["Editor/SentisTts.Editor.asmdef"]["includePlatforms"] == ["Editor"]
    assert "UNITY_INCLUDE_TESTS" in asmdefs["Tests/Editor/SentisTts.Editor.Tests.asmdef"]["defineConstraints"]
    for rel, a in asmdefs.items():
        for r in a.get("references", []):
            assert r in names or r.startswith("Unity"), f"{rel}: unknown assembly reference {r}"
    # every non-hidden folder with C# has exactly one asmdef above it (Unity compiles it into that assembly)
    for cs in PKG.rglob("*.cs"):
        rel = cs.relative_to(PKG)
        if any(part.endswith("~") for part in rel.parts):
            continue
        assert any((PKG / Path(*rel.parts[:i])).glob("*.asmdef") for i in range(1, len(rel.parts))), f"{rel} has no asmdef"


def test_core_has_no_engine_references():
    """Runtime/Core must stay plain C# (it is the part tested here and reused outside Unity)."""
    bad = []
    for p in (PKG / "Runtime" / "Core").rglob("*.cs"):
        text = p.read_text(encoding="utf-8")
        if re.search(r"^\s*using\s+(UnityEngine|UnityEditor|Unity\.InferenceEngine|Unity\.Sentis)\b", text, re.M):
            bad.append(p.name)
    assert not bad, f"Core files reference Unity/Sentis: {bad}"
    asm = json.loads((PKG / "Runtime" / "Core" / "SentisTts.Core.asmdef").read_text())
    assert asm["noEngineReferences"] is True and asm["references"] == []


def test_package_documentation_matches_docs():
    assert (PKG / "Documentation~" / "index.md").read_text(encoding="utf-8") == (ROOT / "docs" / "unity.md").read_text(encoding="utf-8"), \
        "unity_package/Documentation~/index.md must be a copy of docs/unity.md"


def test_every_imported_asset_has_a_meta_file():
    """Git-installed packages are immutable; Unity ignores assets without .meta there."""
    from .gen_meta import meta_text, wanted

    missing = [p.relative_to(PKG).as_posix() for p in wanted() if not p.with_name(p.name + ".meta").is_file()]
    assert not missing, f"run `python -m tests.unity.gen_meta`: no .meta for {missing[:5]}"
    stale = [p.relative_to(PKG).as_posix() for p in wanted() if p.with_name(p.name + ".meta").read_text() != meta_text(p)]
    assert not stale, f"run `python -m tests.unity.gen_meta`: stale .meta for {stale[:5]}"
    guids = [p.with_name(p.name + ".meta").read_text().split("guid: ")[1][:32] for p in wanted()]
    assert len(set(guids)) == len(guids)
    orphans = [m.relative_to(PKG).as_posix() for m in PKG.rglob("*.meta") if not m.with_name(m.name[:-5]).exists()]
    assert not orphans, f"orphan .meta files: {orphans}"
