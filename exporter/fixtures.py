"""Model directories in the official CosyVoice2 layout with seeded random weights.

Weights cannot be downloaded here, so tests, the demo and the benchmarks build model directories
that go through exactly the same loading path as an official download:

- `tiny`: small dims, a few MB, for tests and `sentis-tts demo`;
- `full`: the real CosyVoice2-0.5B dimensions (random weights) for benchmarks and size checks.

The yaml is written in the official hyperpyyaml format (`!new:`/`!name:`/`!ref` tags, official
class paths and argument names), so the official code could load it too.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from . import hyperyaml
from .checkpoint import save_state_dict
from .config import Qwen2Config, parse_config

# --------------------------------------------------------------------------------------------
# sizes: values substituted into the yaml template / config.json
SIZES: dict[str, dict] = {
    "tiny": dict(
        qwen=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, rope_theta=1_000_000.0, max_position_embeddings=4096),
        # the official encoder hard-codes 512 in its lookahead/up layers, and feeds the up-sampled
        # 512-wide output through an embed built with input_size: both must be 512 (pitfalls.md)
        flow_input_size=512,
        enc_output_size=512,
        enc_heads=8, enc_units=256, enc_blocks=1,
        est_channels=[64], est_head_dim=16, est_blocks=1, est_mid_blocks=1, est_heads=2,
        hift_base=32, hift_cond=32,
        bpe_merges=300,
    ),
    "full": dict(
        qwen=dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                  intermediate_size=4864, rope_theta=1_000_000.0, max_position_embeddings=32768),
        flow_input_size=512,
        enc_output_size=512, enc_heads=8, enc_units=2048, enc_blocks=6,
        est_channels=[256], est_head_dim=64, est_blocks=4, est_mid_blocks=12, est_heads=8,
        hift_base=512, hift_cond=512,
        bpe_merges=300,
        qwen_vocab_size=151936,
    ),
}

YAML_TEMPLATE = """\
# set random seed, so that you may reproduce your result.
__set_seed1: !apply:random.seed [1986]
__set_seed2: !apply:numpy.random.seed [1986]
__set_seed3: !apply:torch.manual_seed [1986]
__set_seed4: !apply:torch.cuda.manual_seed_all [1986]

# fixed params
sample_rate: 24000
llm_input_size: {hidden}
llm_output_size: {hidden}
spk_embed_dim: 192
qwen_pretrain_path: ''
token_frame_rate: 25
token_mel_ratio: 2

# stream related params
chunk_size: 25 # streaming inference chunk size, in token
num_decoding_left_chunks: -1 # streaming inference flow decoder left chunk size, <0 means use all left chunks

# model params
llm: !new:cosyvoice.llm.llm.Qwen2LM
    llm_input_size: !ref <llm_input_size>
    llm_output_size: !ref <llm_output_size>
    speech_token_size: 6561
    length_normalized_loss: True
    lsm_weight: 0
    mix_ratio: [5, 15]
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1

flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: {flow_input_size}
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: 6561
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: 3
    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder
        output_size: {enc_output_size}
        attention_heads: {enc_heads}
        linear_units: {enc_units}
        num_blocks: {enc_blocks}
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.1
        normalize_before: True
        input_layer: 'linear'
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'rel_selfattn'
        input_size: {flow_input_size}
        use_cnn_module: False
        macaron_style: False
        static_chunk_size: !ref <chunk_size>
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: {est_channels}
            dropout: 0.0
            attention_head_dim: {est_head_dim}
            n_blocks: {est_blocks}
            num_mid_blocks: {est_mid_blocks}
            num_heads: {est_heads}
            act_fn: 'gelu'
            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
            num_decoding_left_chunks: !ref <num_decoding_left_chunks>

hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: {hift_base}
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 5, 3]
    upsample_kernel_sizes: [16, 11, 7]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3, 7, 11]
    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: {hift_cond}

# processor functions (only the inference-relevant ones are read by sentis-tts)
get_tokenizer: !name:cosyvoice.tokenizer.tokenizer.get_qwen_tokenizer
    token_path: !ref <qwen_pretrain_path>
    skip_special_tokens: True
allowed_special: 'all'
feat_extractor: !name:matcha.utils.audio.mel_spectrogram
    n_fft: 1920
    num_mels: 80
    sampling_rate: !ref <sample_rate>
    hop_size: 480
    win_size: 1920
    fmin: 0
    fmax: 8000
    center: False
"""

# --------------------------------------------------------------------------------------------
# a tiny byte-level BPE (GPT-2/Qwen2 style vocab.json + merges.txt) trained on a built-in corpus

_CORPUS = """\
Hello, this is a tiny text to speech model. It speaks words from text, offline, in a game.
The quick brown fox jumps over the lazy dog. Numbers like 1, 2, 3 and 2026 are read aloud.
Unity developers want voices that run on the player's machine without a server.
Sentis imports ONNX graphs; the exporter writes them with fixed shapes and checks parity.
你好，世界。今天天气很好。 こんにちは、世界。今日はいい天気です。 안녕하세요.
"""


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte -> printable unicode mapping used by Qwen2's byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_PRETOK = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d| ?[^\s\w]+|\s+""", re.UNICODE)


def train_tiny_bpe(corpus: str, n_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: i for i, b in enumerate(sorted(b2u))}
    words = Counter(tuple(b2u[b] for b in w.encode("utf-8")) for w in _PRETOK.findall(corpus))
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        vocab.setdefault(a + b, len(vocab))
        new_words: Counter = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] += c
        words = new_words
    return vocab, merges


QWEN_BASE_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def write_tokenizer(dst: Path, n_merges: int) -> int:
    """Write vocab.json, merges.txt, tokenizer_config.json; return the number of ids used."""
    vocab, merges = train_tiny_bpe(_CORPUS, n_merges)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dst / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    added = {}
    for i, tok in enumerate(QWEN_BASE_SPECIALS):
        added[str(len(vocab) + i)] = {"content": tok, "lstrip": False, "rstrip": False, "normalized": False,
                                      "single_word": False, "special": True}
    (dst / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": added, "bos_token": None, "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "model_max_length": 32768, "tokenizer_class": "Qwen2Tokenizer",
        "errors": "replace", "clean_up_tokenization_spaces": False,
    }, indent=2), encoding="utf-8")
    return len(vocab) + len(QWEN_BASE_SPECIALS)


# --------------------------------------------------------------------------------------------
# hooks for the ONNX-only components (speech tokenizer, CAM++): a module may provide
#   write_official_onnx(path: Path, size: str, seed: int) -> None
# writing an ONNX file in the structure of the official one (built from our PyTorch port).
_ONNX_WRITERS: dict[str, tuple[str, str]] = {
    "campplus.onnx": ("exporter.campplus.fixture", "write_official_onnx"),
    "speech_tokenizer_v2.onnx": ("exporter.speech_tokenizer.fixture", "write_official_onnx"),
}


def _onnx_writer(filename: str) -> Callable | None:
    import importlib

    mod_name, fn = _ONNX_WRITERS[filename]
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name == mod_name:
            return None
        raise
    return getattr(mod, fn)


def build_model_dir(
    dst: str | Path,
    size: str = "tiny",
    seed: int = 0,
    *,
    fmt: str = "pt",
    with_onnx: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a complete model directory in the official layout. Returns its path.

    fmt: 'pt' (torch zip, like the official files) or 'safetensors'.
    Written into a temporary sibling directory and renamed into place (never half-written).
    """
    from .flow.keys import random_checkpoint as flow_ckpt
    from .hift.keys import random_checkpoint as hift_ckpt
    from .llm.keys import random_checkpoint as llm_ckpt

    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}")
    return write_model_dir(dst, SIZES[size], size=size, seed=seed, yaml_name="cosyvoice2.yaml", template=YAML_TEMPLATE,
                           parse=parse_config, checkpoints={"llm": llm_ckpt, "flow": flow_ckpt, "hift": hift_ckpt},
                           onnx_files=tuple(_ONNX_WRITERS) if with_onnx else (), fmt=fmt, overwrite=overwrite)


@contextmanager
def staged_dir(dst: str | Path, overwrite: bool):
    """A temp sibling of `dst` to write a model directory into, renamed to `dst` when the block
    ends without error and removed otherwise: never half-written. An existing `dst` is refused
    unless overwrite."""
    dst = Path(dst)
    if dst.exists():
        if not overwrite:
            raise FileExistsError(f"{dst} exists (pass overwrite=True)")
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        yield tmp
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_model_dir(dst: str | Path, s: dict, *, size: str, seed: int, yaml_name: str, template: str, parse: Callable,
                    checkpoints: dict[str, Callable], onnx_files: tuple[str, ...], fmt: str, overwrite: bool) -> Path:
    """The fixture writer every Qwen2-LM family shares: tokenizer + config.json from `s["qwen"]`, the
    yaml `template` formatted with `s`, read back by `parse` (the family's config reader), then
    checkpoints[name](component config, seed + i) for llm/flow/hift and the ONNX files' hooks.
    Temp sibling directory renamed into place: never half-written."""
    with staged_dir(dst, overwrite) as tmp:
        n_ids = write_tokenizer(tmp / "CosyVoice-BlankEN", s["bpe_merges"])
        qwen = Qwen2Config(**s["qwen"], vocab_size=s.get("qwen_vocab_size", n_ids + 32))
        (tmp / "CosyVoice-BlankEN" / "config.json").write_text(json.dumps(qwen.to_json_dict(), indent=2))
        text = template.format(hidden=qwen.hidden_size, **{k: v for k, v in s.items() if k != "qwen"})
        (tmp / yaml_name).write_text(text, encoding="utf-8")
        cfg = parse(hyperyaml.loads(text, yaml_name), qwen, yaml_name)
        ext = ".safetensors" if fmt == "safetensors" else ".pt"
        for i, (name, make) in enumerate(checkpoints.items()):
            save_state_dict(make(getattr(cfg, name), seed + i), tmp / f"{name}{ext}")
        for fname in onnx_files:
            writer = _onnx_writer(fname)
            if writer is not None:
                writer(tmp / fname, size=size, seed=seed + 3)
    return Path(dst)
