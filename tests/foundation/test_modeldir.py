"""Reading a model directory in the official layout, and the errors a user can cause."""
import json
import shutil

import pytest
import torch

from exporter.checkpoint import check_state_dict, load_into, load_state_dict
from exporter.config import LLMConfig
from exporter.errors import CheckpointError, ModelDirError
from exporter.fixtures import SIZES, build_model_dir
from exporter.flow.keys import official_keys as flow_keys
from exporter.hift.keys import official_keys as hift_keys
from exporter.llm.keys import official_keys as llm_keys
from exporter.modeldir import ModelDir


def test_tiny_dir_reads_back_its_config(tiny_md):
    c = tiny_md.config
    q = SIZES["tiny"]["qwen"]
    assert c.llm.qwen.hidden_size == q["hidden_size"] and c.llm.qwen.num_key_value_heads == q["num_key_value_heads"]
    assert c.llm.speech_token_size == 6561 and c.llm.stop_token_ids == [6561, 6562, 6563]
    assert c.llm.sampling.top_k == 25 and c.llm.sampling.top_p == pytest.approx(0.8)
    assert c.flow.estimator.static_chunk_size == 50  # !ref <chunk_size> * <token_mel_ratio>
    assert c.flow.inference_cfg_rate == pytest.approx(0.7)
    assert c.hift.hop_samples == 480 and c.sample_rate == 24000
    assert c.mel.fmax == 8000 and c.mel.n_fft == 1920


def test_checkpoints_match_the_official_key_tables(tiny_md):
    c = tiny_md.config
    check_state_dict(llm_keys(c.llm), tiny_md.load_checkpoint("llm"), source="llm.pt")
    check_state_dict(flow_keys(c.flow), tiny_md.load_checkpoint("flow"), source="flow.pt")
    check_state_dict(hift_keys(c.hift), tiny_md.load_checkpoint("hift"), source="hift.pt")


def test_full_size_key_tables_match_the_fact_sheet_counts():
    """Counts from ../shared/reference/cosyvoice2_architecture.md §4.2, §6.4, §7.3."""
    import math

    from exporter.config import FlowConfig, HiFTConfig

    for keys, n_tensors, n_values in (
        (llm_keys(LLMConfig()), 295, 641_938_468),
        (flow_keys(FlowConfig()), 1121, 112_549_360),
        (hift_keys(HiFTConfig()), 328, 20_821_295),
    ):
        assert len(keys) == n_tensors
        assert sum(math.prod(s) for s in keys.values()) == n_values


def test_safetensors_dir_loads_the_same(tmp_path, tiny_md):
    d = build_model_dir(tmp_path / "st", size="tiny", seed=0, fmt="safetensors", with_onnx=False)
    md = ModelDir.open(d)
    a, b = md.load_checkpoint("hift"), tiny_md.load_checkpoint("hift")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_generator_prefix_is_stripped(tmp_path, tiny_model_dir):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    sd = torch.load(d / "hift.pt", weights_only=True)
    torch.save({f"generator.{k}": v for k, v in sd.items()}, d / "hift.pt")
    assert set(ModelDir.open(d).load_checkpoint("hift")) == set(sd)


@pytest.fixture
def broken_dir(tmp_path, tiny_model_dir):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    return d


def test_missing_yaml(broken_dir):
    (broken_dir / "cosyvoice2.yaml").unlink()
    with pytest.raises(ModelDirError, match="missing cosyvoice2.yaml"):
        ModelDir.open(broken_dir)


def test_cosyvoice1_dir_is_named(broken_dir):
    (broken_dir / "cosyvoice2.yaml").rename(broken_dir / "cosyvoice.yaml")
    with pytest.raises(ModelDirError, match="CosyVoice 1"):
        ModelDir.open(broken_dir)


def test_missing_qwen_config(broken_dir):
    (broken_dir / "CosyVoice-BlankEN" / "config.json").unlink()
    with pytest.raises(ModelDirError, match="config.json"):
        ModelDir.open(broken_dir)


def test_bad_qwen_config(broken_dir):
    p = broken_dir / "CosyVoice-BlankEN" / "config.json"
    cfg = json.loads(p.read_text())
    del cfg["hidden_size"]
    p.write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError, match="missing Qwen2 hyper-parameters: hidden_size"):
        ModelDir.open(broken_dir)


def test_missing_checkpoint_and_both_formats(broken_dir):
    md = ModelDir.open(broken_dir)
    (broken_dir / "flow.pt").unlink()
    with pytest.raises(ModelDirError, match=r"missing flow.pt \(or flow.safetensors\)"):
        md.load_checkpoint("flow")
    (broken_dir / "llm.safetensors").write_bytes(b"x")
    with pytest.raises(ModelDirError, match="both llm.pt and llm.safetensors"):
        md.checkpoint_path("llm")


def test_corrupt_and_pickled_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_state_dict(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_state_dict(empty)

    class Evil:
        def __reduce__(self):
            return (print, ("executed!",))

    evil = tmp_path / "evil.pt"
    torch.save({"w": Evil()}, evil)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_state_dict(evil)
    st = tmp_path / "bad.safetensors"
    st.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="safetensors"):
        load_state_dict(st)


def test_key_mismatch_lists_offending_keys():
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    del sd["0.weight"]
    sd["1.weight"] = torch.zeros(5, 5)
    for i in range(8):
        sd[f"extra.{i}"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as ei:
        load_into(m, sd, source="x.pt")
    msg = str(ei.value)
    assert "1 missing key(s): 0.weight" in msg
    assert "8 unexpected key(s): extra.0" in msg and "(+3 more)" in msg
    assert "1 shape mismatch(es): 1.weight (5, 5) != (2, 3)" in msg
    assert "\n" not in msg
    # ignored keys are dropped silently
    sd2 = dict(m.state_dict())
    sd2["lm_head.weight"] = torch.zeros(1)
    load_into(m, sd2, source="x.pt", ignore_unexpected=["lm_head.weight"])


def test_fixture_is_seeded(tmp_path):
    a = build_model_dir(tmp_path / "a", size="tiny", seed=3, with_onnx=False)
    b = build_model_dir(tmp_path / "b", size="tiny", seed=3, with_onnx=False)
    c = build_model_dir(tmp_path / "c", size="tiny", seed=4, with_onnx=False)
    sa, sb, sc = (torch.load(d / "hift.pt", weights_only=True) for d in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["conv_pre.bias"], sc["conv_pre.bias"])
    assert (a / "cosyvoice2.yaml").read_text() == (b / "cosyvoice2.yaml").read_text()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp dirs left


def test_flow_encoder_widths_must_match(broken_dir):
    p = broken_dir / "cosyvoice2.yaml"
    p.write_text(p.read_text().replace("        output_size: 512\n", "        output_size: 256\n"))
    with pytest.raises(ModelDirError, match="must be equal"):
        ModelDir.open(broken_dir)
