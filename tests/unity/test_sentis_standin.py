"""The package's real SentisGraphRunner, SpeakerLogic (CosyVoiceSpeaker's logic) and Core on the Sentis
stand-in (unity_package/Tests/SentisStandIn~: the subset of Unity.InferenceEngine the package calls,
with device/CPU residency, worker-owned outputs, blocking vs asynchronous readback, counted).

Asserted in the C# program (StandInTests~/StandInMain.cs): the pipeline and LLM golden traces replay
through the runner frame by frame; live tensors return to the baseline after each of 100 utterances
(with cancellations) and to zero after a destroy mid-Speak; after warm-up a decode step allocates no
tensor, does no blocking readback and at most 3 submissions. Here: the stand-in's public API exists in
the real API (shared/reference/sentis_api, via the generated stubs)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from .test_csharp_core import GOLDEN, MCS, MONO, PKG, STUBS, mcs, needs_mono, sources


def full_llm_manifest(path) -> None:
    """The tiny pipeline manifest with the LLM at CosyVoice2-0.5B shapes (24 layers, 2 KV heads of 64,
    2048 cache slots, hidden 896) — for the per-step figures of a real bundle."""
    t = json.loads((GOLDEN / "pipeline_stream_zero_shot.json").read_text(encoding="utf-8"))["manifest"]
    L, H, D, C, d = 24, 2, 64, 2048, 896
    c = t["components"]["llm"]
    c.update(num_layers=L, num_key_value_heads=H, head_dim=D, max_cache_len=C, hidden_size=d)
    step = t["graphs"][c["graphs"]["step"]]
    old_cache = set(c["cache_inputs"]) | set(c["cache_outputs"])
    past = [f"past_key_values.{i}.{k}" for i in range(L) for k in ("key", "value")]
    c["cache_inputs"] = past
    new_in = [x for x in step["inputs"] if x["name"] not in old_cache]
    new_out = [x for x in step["outputs"] if x["name"] not in old_cache]
    for x in new_in + new_out:
        x["shape"] = [d if s == 64 else s for s in x["shape"]]
    step["inputs"] = new_in + [{"name": n, "shape": [1, H, C, D], "dtype": "float32"} for n in past]
    if "cache_append" in c["graphs"]:  # rows contract: step outputs new rows, the append graph writes the cache
        rows = [n.replace("past_key_values", "new_key_values") for n in past]
        pres = [n.replace("past_key_values", "present") for n in past]
        step["outputs"] = [x for x in new_out if not x["name"].startswith("new_key_values")] + \
            [{"name": n, "shape": [1, H, "query_len", D], "dtype": "float32"} for n in rows]
        ap = t["graphs"][c["graphs"]["cache_append"]]
        ap["inputs"] = [x for x in ap["inputs"] if not x["name"].startswith(("past_key_values", "new_key_values"))] + \
            [{"name": n, "shape": [1, H, C, D], "dtype": "float32"} for n in past] + \
            [{"name": n, "shape": [1, H, "query_len", D], "dtype": "float32"} for n in rows]
        ap["outputs"] = [{"name": n, "shape": [1, H, C, D], "dtype": "float32"} for n in pres]
        c["cache_rows"], c["cache_outputs"] = rows, pres
    else:
        pres = [n.replace("past_key_values", "present") for n in past]
        c["cache_outputs"] = pres
        step["outputs"] = new_out + [{"name": n, "shape": [1, H, C, D], "dtype": "float32"} for n in pres]
    for e in ("text_embedding", "speech_embedding", "special_embedding"):
        t["graphs"][c["graphs"][e]]["outputs"][0]["shape"][2] = d
    path.write_text(json.dumps(t), encoding="utf-8")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    d = tmp_path_factory.mktemp("standin")
    core = d / "SentisTts.Core.dll"
    mcs(core, sources(PKG / "Runtime" / "Core"))
    api = d / "Unity.InferenceEngine.StandIn.dll"
    mcs(api, sources(PKG / "Tests" / "SentisStandIn~"))
    sentis = d / "SentisTts.Sentis.dll"
    mcs(sentis, sources(PKG / "Runtime" / "Sentis"), refs=[core, api])
    exe = d / "StandInTests.exe"
    shared = [str(PKG / "Tests" / "Standalone~" / f) for f in ("ReplayRunner.cs", "FakeRunner.cs", "PipelineCase.cs")]
    mcs(exe, sources(PKG / "Tests" / "StandInTests~") + shared, target="exe", refs=[core, api, sentis])
    return d


@needs_mono
def test_runner_and_speaker_on_the_standin(standin, tmp_path):
    full_llm_manifest(tmp_path / "full_llm_manifest.json")
    res = subprocess.run([MONO, str(standin / "StandInTests.exe"), str(GOLDEN), str(tmp_path / "full_llm_manifest.json")],
                         capture_output=True, text=True, timeout=300, cwd=standin)
    out = res.stdout.strip().splitlines()
    print(res.stdout)
    assert out, res.stderr
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", out[-1])
    assert m, f"last line is not 'N passed, N failed':\n{res.stdout}\n{res.stderr}"
    assert int(m.group(2)) == 0, "\n".join(line for line in out if not line.startswith("COUNTS"))
    n_golden = sum(1 for p in GOLDEN.glob("*.json") if json.loads(p.read_text(encoding="utf-8"))["kind"] in ("pipeline", "llm_generate", "pipeline_bistream", "cv3_pipeline", "cv3_pipeline_bistream"))
    assert sum(1 for line in out if line.startswith("PASS golden ")) == n_golden
    assert int(m.group(1)) == n_golden + 14 and res.returncode == 0


def _api_members(version: str) -> dict[str, set[tuple[str, int]]]:
    from . import gen_sentis_stubs as g

    path = g.DEFAULT_API_DIR / f"sentis_api_{version}.json"
    types = json.loads(path.read_text(encoding="utf-8"))["runtime"]["types"]
    r = {}
    for k, ty in types.items():
        members = {(m["name"], len(m.get("params", []))) for m in ty["members"] if m["access"] == "public"}
        members |= {(v["name"], 0) for v in ty.get("values", [])}
        r[k.replace("`1", "`1")] = members
    return r


@needs_mono
@pytest.mark.parametrize("version", ["2.2.0", "2.4.0"])
def test_standin_api_exists_in_the_real_api(standin, version):
    """Every public type/member the stand-in offers in Unity.InferenceEngine is in the real API (name and
    parameter count; the package itself is compiled against stubs generated from the real API)."""
    from . import gen_sentis_stubs as g

    if not g.DEFAULT_API_DIR.is_dir():
        pytest.skip(f"the extracted Sentis API ({g.DEFAULT_API_DIR}) is not on this machine")
    real = _api_members(version)
    res = subprocess.run([MONO, str(standin / "StandInTests.exe"), "--dump-api"], capture_output=True, text=True, timeout=60, cwd=standin)
    assert res.returncode == 0, res.stderr
    missing = []
    for line in res.stdout.splitlines():
        parts = line.split(" ")
        if parts[0] == "TYPE":
            if parts[1] not in real:
                missing.append(parts[1])
            continue
        _, typ, kind, name, params = parts[0], parts[1], parts[2], parts[3], " ".join(parts[4:])
        n = 0 if params == "()" else params.count(",") + 1
        if kind == "Field" and name == "value__":  # an enum's storage field
            continue
        if kind == "Constructor":
            name = typ.split(".")[-1].split("`")[0]
            if n == 0 and not any(h[0] == name for h in real.get(typ, set())):  # the implicit default constructor
                continue
        if name == "Item":  # indexer
            name = "this[]"
        have = real.get(typ, set())
        if (name, n) not in have and not (name.startswith("op_") and any(h[0].startswith("operator") for h in have)) \
                and name not in ("Equals", "GetHashCode", "ToString") and kind != "Field" or (kind == "Field" and (name, 0) not in have):
            missing.append(f"{typ}.{name}/{n} ({kind})")
    assert not missing, f"stand-in members not in the real {version} API: {missing}"
