"""The whole CosyVoice2 TTS pipeline on onnxruntime + numpy (no torch): text → speech tokens
(LLM) → mel (flow) → 24 kHz waveform (HiFT), in the modes of the official API, non-streaming and
streaming. This is the executable specification the C# runtime mirrors.

Modes (official `CosyVoice2.inference_*`):
  zero_shot      voice with transcript: LLM prompt = transcript ids + voice speech tokens
  cross_lingual  voice without its transcript: LLM sees only the target text
  instruct2      LLM prompt text = instruction + '<|endofprompt|>', no LLM prompt speech
  sft            built-in speaker (spk2info): LLM text only; flow gets only the embedding
In every mode but sft the flow is prompted with the voice's speech tokens, mel and embedding.

Randomness: one root seed. `np.random.SeedSequence(seed).spawn(2)` gives two child streams —
[0] the sampling uniforms of the LLM, [1] the vocoder's source noise — so streaming and
non-streaming runs draw the same tokens and the same noise for the same seed. The flow's noise
is the fixed table shipped in the bundle.

Streaming follows CosyVoice2Model.tts(stream=True): a chunk is vocoded when hop + 3 lookahead
tokens are available (the first hop is padded so prompt + hop is a multiple of 25), the flow is
re-run on all tokens so far with chunk masks and the new 2·hop mel frames are vocoded with the
official HiFT cache and cross-fade; the hop doubles after each chunk up to 100 tokens (per
utterance — the official code keeps the grown hop across calls, which we do not copy).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import flow as flow_mod
from .bundle import Bundle
from .errors import BundleError
from .errors import RuntimeRefError
from .hift import HiFTVocoder, OfficialStream
from .llm import LLM
from .prompt import load_voice

MODES = ("zero_shot", "cross_lingual", "instruct2", "sft")
# Text pieces are sized for this many speech tokens per text token (measured speaking rates are
# ~5-8 at 25 tokens/s); generation is additionally capped at what the largest flow bucket holds,
# and a piece that reaches that cap is reported (warning), never cut silently.
PIECE_SPEECH_TOKENS_PER_TEXT_TOKEN = 10.0
ENDOFPROMPT = "<|endofprompt|>"


class PipelineError(RuntimeRefError):
    """A request the pipeline cannot serve (unknown mode, missing voice data, …)."""


class TextNotSpokenWarning(RuntimeWarning):
    """Part of the text is not in the audio (capacity reached, or no speech for a piece)."""


def _warn_not_spoken(message: str) -> None:
    import warnings

    warnings.warn(message, TextNotSpokenWarning, stacklevel=3)


def _clip(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def _recording(source, into: list) -> Iterator[int]:
    for tok in source:
        into.append(tok)
        yield tok


class GeneratorUniforms:
    """UniformSource over a numpy Generator (the LLM sampling stream)."""

    def __init__(self, gen: np.random.Generator):
        self.gen = gen

    def uniform(self) -> float:
        return float(self.gen.random())


def rng_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(sampling, vocoder noise) child generators of one root seed."""
    s_sample, s_noise = np.random.SeedSequence(int(seed)).spawn(2)
    return np.random.Generator(np.random.PCG64(s_sample)), np.random.Generator(np.random.PCG64(s_noise))


@dataclass
class Voice:
    name: str
    embedding: np.ndarray  # (192,) float32
    speech_tokens: np.ndarray  # (P,) int32
    prompt_mel: np.ndarray  # (2P, 80) float32
    prompt_text: str = ""
    prompt_text_ids: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, name: str, a: dict) -> "Voice":
        ids = a.get("prompt_text_ids")
        return cls(
            name=name,
            embedding=np.asarray(a["embedding"], np.float32).reshape(-1),
            speech_tokens=np.asarray(a.get("speech_tokens", np.zeros(0)), np.int32).reshape(-1),
            prompt_mel=np.asarray(a.get("prompt_mel", np.zeros((0, 80))), np.float32).reshape(-1, 80),
            prompt_text=str(a.get("prompt_text", "")),
            prompt_text_ids=None if ids is None else np.asarray(ids, np.int32).reshape(-1),
        )


@dataclass
class PieceRequest:
    """What one text piece sends to the LLM and the flow."""

    text: str
    text_ids: np.ndarray
    llm_prompt_text_ids: np.ndarray
    llm_prompt_speech: np.ndarray
    flow_prompt_tokens: np.ndarray
    flow_prompt_mel: np.ndarray  # (F, 80)
    embedding: np.ndarray


@dataclass
class Synthesis:
    audio: np.ndarray  # (n,) float32 at sample_rate
    sample_rate: int
    tokens: list[list[int]] = field(default_factory=list)  # speech tokens per piece
    mels: list[np.ndarray] = field(default_factory=list)  # (1, 80, frames) per piece
    pieces: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(self, bundle: Bundle, *, normalize: bool = True, japanese_reading: bool = True):
        self.bundle = bundle
        try:
            self._read_bundle(bundle, normalize=normalize, japanese_reading=japanese_reading)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:160]
            raise BundleError(f"{bundle.root}: manifest.json component sections are malformed ({type(e).__name__}: {what}); "
                              "re-export the bundle with `sentis-tts export`") from None

    def _read_bundle(self, bundle: Bundle, *, normalize: bool, japanese_reading: bool) -> None:
        from .text.frontend import TextFrontend

        self.sample_rate = int(bundle.constants.get("sample_rate", 24000))
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate {self.sample_rate}")
        self.llm = LLM(bundle)
        self.vocoder = self.make_vocoder(bundle)
        self.text = TextFrontend.load(bundle, normalize=normalize, japanese_reading=japanese_reading)
        fl = bundle.component("flow")
        self.flow_meta = fl
        self.token_mel_ratio = int(fl["token_mel_ratio"])
        self.lookahead = int(fl["pre_lookahead_len"])
        if not fl["mel_lens"]:
            raise ValueError("flow mel_lens is empty")
        self.max_flow_tokens = max(int(n) for n in fl["mel_lens"]) // self.token_mel_ratio
        self.chunk_size = int(bundle.constants.get("chunk_size", 25))

    @classmethod
    def open(cls, path: str | Path, *, threads: int = 2, **kw) -> "Pipeline":
        return cls(Bundle.open(path, threads=threads), **kw)

    def make_vocoder(self, bundle: Bundle):
        """The family's vocoder runtime (CosyVoice3 overrides it with its causal HiFT)."""
        return HiFTVocoder.from_bundle(bundle)

    # -- requests -------------------------------------------------------------------------------
    def voice(self, name: str) -> Voice:
        return Voice.from_arrays(name, load_voice(self.bundle, name))

    def _prompt_text_ids(self, voice: Voice) -> np.ndarray:
        if voice.prompt_text_ids is not None and voice.prompt_text_ids.size:
            return voice.prompt_text_ids
        if not voice.prompt_text:
            raise PipelineError(f"voice {voice.name!r} has no transcript: use mode cross_lingual, or re-bake it with --text")
        return np.asarray(self.text.encode(self.text.normalize(voice.prompt_text)), np.int32)

    def prompts(self, voice: Voice, mode: str | None = None, *, instruct: str | None = None):
        """(mode, LLM prompt text ids, LLM prompt speech, flow prompt tokens, flow prompt mel)."""
        if mode is None:
            mode = "instruct2" if instruct else ("zero_shot" if (voice.prompt_text or voice.prompt_text_ids is not None) else "cross_lingual")
        if mode not in MODES:
            raise PipelineError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if mode == "instruct2" and not instruct:
            raise PipelineError("mode instruct2 needs an instruction text (e.g. 'Speak happily.')")
        empty_i = np.zeros(0, np.int32)
        if mode == "zero_shot":
            llm_text, llm_speech = self._prompt_text_ids(voice), voice.speech_tokens
        elif mode == "instruct2":
            llm_text = np.asarray(self.text.encode(instruct.strip() + ENDOFPROMPT), np.int32)
            llm_speech = empty_i
        else:
            llm_text, llm_speech = empty_i, empty_i
        if mode == "sft":
            f_tok, f_mel = empty_i, np.zeros((0, 80), np.float32)
        else:
            f_tok, f_mel = voice.speech_tokens, voice.prompt_mel
        return mode, llm_text, llm_speech, f_tok, f_mel

    def requests(self, text: str, voice: Voice, mode: str | None = None, *, instruct: str | None = None) -> list[PieceRequest]:
        """Split `text` into pieces that fit the bundle and build each piece's LLM/flow inputs."""
        from .text.split import text_token_budget

        mode, llm_text, llm_speech, f_tok, f_mel = self.prompts(voice, mode, instruct=instruct)
        budget = text_token_budget(self.llm.capacity, self.max_flow_tokens, prompt_text_tokens=int(llm_text.size),
                                   prompt_speech_tokens=max(int(llm_speech.size), int(f_tok.size)),
                                   speech_tokens_per_text_token=min(self.llm.max_ratio, PIECE_SPEECH_TOKENS_PER_TEXT_TOKEN))
        pieces = self.text.pieces(text, budget)
        return [PieceRequest(p.text, np.asarray(p.ids, np.int32), llm_text, llm_speech, f_tok, f_mel, voice.embedding)
                for p in pieces]

    # -- stages ---------------------------------------------------------------------------------
    def flow_room(self, req: PieceRequest) -> int:
        """Most new speech tokens the largest flow bucket can take after the prompt tokens."""
        return self.max_flow_tokens - int(req.flow_prompt_tokens.size)

    def token_cap(self, req: PieceRequest, max_new_tokens: int | None) -> int:
        cap = self.flow_room(req)
        return cap if max_new_tokens is None else min(cap, int(max_new_tokens))

    def iter_tokens_for(self, req: PieceRequest, sampling: np.random.Generator, *, sampler: str = "ras",
                        max_new_tokens: int | None = None) -> Iterator[int]:
        """Speech tokens of one piece, yielded as they are sampled (at most `token_cap`)."""
        return self.llm.iter_tokens(req.text_ids, req.llm_prompt_text_ids, req.llm_prompt_speech,
                                    rng=GeneratorUniforms(sampling), sampler=sampler,
                                    max_new_tokens=self.token_cap(req, max_new_tokens))

    def speech_tokens(self, req: PieceRequest, sampling: np.random.Generator, *, sampler: str = "ras",
                      max_new_tokens: int | None = None) -> list[int]:
        toks = list(self.iter_tokens_for(req, sampling, sampler=sampler, max_new_tokens=max_new_tokens))
        self._warn_if_capped(req, toks, max_new_tokens)
        return toks

    def _warn_if_capped(self, req: PieceRequest, toks: list[int], max_new_tokens: int | None) -> None:
        if max_new_tokens is None and len(toks) >= self.flow_room(req):
            import warnings

            warnings.warn(f"the piece {req.text[:40]!r} reached the flow's capacity ({self.flow_room(req)} speech tokens "
                          "after the prompt) before the model stopped; re-export the flow with a larger --flow-len",
                          TextNotSpokenWarning, stacklevel=3)

    def token2mel(self, req: PieceRequest, tokens, *, streaming: bool = False, finalize: bool = True) -> np.ndarray:
        return flow_mod.token2mel(self.bundle, req.flow_prompt_tokens[None], np.asarray(tokens, np.int32)[None],
                                  req.flow_prompt_mel[None], req.embedding[None], streaming=streaming, finalize=finalize)

    def mel2wav(self, mel: np.ndarray, noise_rng: np.random.Generator) -> np.ndarray:
        wav, _ = self.vocoder.mel2wav(mel, rng=noise_rng)
        return wav[0]

    # -- whole utterances -----------------------------------------------------------------------
    def synthesize(self, text: str, voice: Voice | str, *, mode: str | None = None, instruct: str | None = None,
                   seed: int = 0, sampler: str = "ras", max_new_tokens: int | None = None, progress=None) -> Synthesis:
        """Non-streaming synthesis: each piece is generated, flowed and vocoded whole.
        `progress(done, total, audio_seconds)` (optional) is called before the first and after each piece."""
        voice = self.voice(voice) if isinstance(voice, str) else voice
        sampling, noise = rng_streams(seed)
        out = Synthesis(np.zeros(0, np.float32), self.sample_rate)
        audio = []
        reqs = self._requests_or_error(text, voice, mode, instruct=instruct)
        n_samples = 0
        if progress:
            progress(0, len(reqs), 0.0)
        for i, req in enumerate(reqs):
            toks = self.speech_tokens(req, sampling, sampler=sampler, max_new_tokens=max_new_tokens)
            out.tokens.append(toks)
            out.pieces.append(req.text)
            if toks:
                mel = self.token2mel(req, toks)
                out.mels.append(mel)
                audio.append(self.mel2wav(mel, noise))
                n_samples += audio[-1].size
            else:
                _warn_not_spoken(f"the model produced no speech for the piece {_clip(req.text)}; that text is not in the audio")
            if progress:
                progress(i + 1, len(reqs), n_samples / self.sample_rate)
        out.audio = np.concatenate(audio).astype(np.float32) if audio else np.zeros(0, np.float32)
        return out

    def _requests_or_error(self, text: str, voice: Voice, mode, *, instruct) -> list[PieceRequest]:
        reqs = self.requests(text, voice, mode, instruct=instruct)
        if not reqs:
            raise PipelineError(f"nothing to speak in {_clip(text)} (no words left after normalisation; pass text with words)")
        return reqs

    # -- streaming ------------------------------------------------------------------------------
    def stream(self, text: str, voice: Voice | str, *, mode: str | None = None, instruct: str | None = None,
               seed: int = 0, sampler: str = "ras", max_new_tokens: int | None = None,
               first_hop: int | None = None, max_hop: int = 100, progress=None) -> Iterator[np.ndarray]:
        """Yields float32 PCM chunks as soon as they are ready (official streaming schedule).
        `progress` as in `synthesize` (called per piece)."""
        voice = self.voice(voice) if isinstance(voice, str) else voice
        sampling, noise = rng_streams(seed)
        reqs = self._requests_or_error(text, voice, mode, instruct=instruct)
        n_samples = 0
        if progress:
            progress(0, len(reqs), 0.0)
        for i, req in enumerate(reqs):
            toks: list[int] = []
            source = self.iter_tokens_for(req, sampling, sampler=sampler, max_new_tokens=max_new_tokens)
            for chunk in self._stream_piece(req, _recording(source, toks), noise, first_hop=first_hop or self.chunk_size, max_hop=max_hop):
                n_samples += chunk.size
                yield chunk
            self._warn_if_capped(req, toks, max_new_tokens)
            if not toks:
                _warn_not_spoken(f"the model produced no speech for the piece {_clip(req.text)}; that text is not in the audio")
            if progress:
                progress(i + 1, len(reqs), n_samples / self.sample_rate)

    def stream_bistream(self, text_chunks, voice: Voice | str, *, mode: str | None = None, instruct: str | None = None,
                        seed: int = 0, sampler: str = "ras", max_new_tokens: int | None = None,
                        first_hop: int | None = None, max_hop: int = 100) -> Iterator[np.ndarray]:
        """Bistream: `text_chunks` is an iterable of strings arriving over time (e.g. from a chat
        model); speech starts before the text is complete (runtime_ref/bistream.py). The text is
        tokenized chunk by chunk without normalisation, as the official frontend does for a
        generator. One utterance: the flow's capacity caps the speech tokens."""
        voice = self.voice(voice) if isinstance(voice, str) else voice
        sampling, noise = rng_streams(seed)
        mode, llm_text, llm_speech, f_tok, f_mel = self.prompts(voice, mode, instruct=instruct)
        req = PieceRequest("<stream>", np.zeros(0, np.int32), llm_text, llm_speech, f_tok, f_mel, voice.embedding)

        chunks = iter(text_chunks)
        arrived: list[str] = []

        def text_ids():
            for chunk in chunks:
                arrived.append(chunk)
                yield from self.text.encode(chunk)

        cap = self.token_cap(req, max_new_tokens)
        toks: list[int] = []
        source = self.bistream_tokens_for(req, text_ids(), sampling, sampler=sampler, max_new_tokens=cap)
        yield from self._stream_piece(req, _recording(source, toks), noise, first_hop=first_hop or self.chunk_size, max_hop=max_hop)
        if len(toks) >= cap:  # stopped by the cap, not by EOS: say which text did not make it
            heard = "".join(arrived)
            rest = "".join(chunks)  # the rest of the stream, never read by the LLM
            why = (f"the utterance reached the {'--max-new-tokens cap' if max_new_tokens is not None else 'flow capacity'} "
                   f"({cap} speech tokens) after {len(heard)} of {len(heard) + len(rest)} characters had arrived")
            _warn_not_spoken(f"bistream: {why}; speech for the text from about there on is missing (the end: "
                             f"{_clip((heard + rest)[-60:])}) — send shorter utterances, or re-export the flow with a larger --flow-len")

    def bistream_feeder(self):
        from .bistream import OrtFeeder

        return OrtFeeder(self.llm)

    def sample_fn(self, sampler: str):
        from .sampling import greedy, ras_sampling

        if sampler not in ("ras", "greedy"):
            raise PipelineError(f"unknown sampler {sampler!r}; use 'ras' or 'greedy'")
        return {"ras": ras_sampling, "greedy": greedy}[sampler]

    def bistream_prompt(self, req: PieceRequest) -> tuple[np.ndarray, np.ndarray]:
        """(ids fed right after sos, prompt text ids mixed with the prompt speech): CosyVoice2 has no prefix."""
        return np.zeros(0, np.int32), req.llm_prompt_text_ids

    def bistream_tokens_for(self, req: PieceRequest, text_ids, sampling, *, sampler: str, max_new_tokens: int | None):
        from .bistream import bistream_tokens

        prefix, prompt_text = self.bistream_prompt(req)
        m = self.llm.meta
        return bistream_tokens(text_ids, prompt_text, req.llm_prompt_speech, engine=self.bistream_feeder(),
                               sample=self.sample_fn(sampler), params=self.llm.ras,
                               rng=GeneratorUniforms(sampling), mix_ratio=tuple(m.get("mix_ratio", (5, 15))),
                               speech_token_size=self.llm.min_len_masked, eos=self.llm.eos,
                               fill=int(m.get("fill_token", self.llm.eos + 2)), prefix_ids=prefix, max_new_tokens=max_new_tokens)

    def _stream_piece(self, req: PieceRequest, token_source, noise, *, first_hop, max_hop):
        tokens: list[int] = []
        hop = first_hop
        offset = 0
        P = int(req.flow_prompt_tokens.size)
        prompt_pad = int(np.ceil(P / self.chunk_size) * self.chunk_size - P)
        streamer = OfficialStream(self.vocoder, rng=noise)
        look = self.lookahead
        ratio = self.token_mel_ratio
        for tok in token_source:
            tokens.append(tok)
            this_hop = hop + prompt_pad if offset == 0 else hop
            if len(tokens) - offset >= this_hop + look:
                mel = self.token2mel(req, tokens[: offset + this_hop + look], streaming=True, finalize=False)
                chunk = streamer.push(mel[:, :, offset * ratio:], final=False)
                offset += this_hop
                hop = min(max_hop, hop * 2)
                if chunk.size:
                    yield chunk[0]
        if not tokens:
            return
        mel = self.token2mel(req, tokens, streaming=False, finalize=True)
        yield streamer.push(mel[:, :, offset * ratio:], final=True)[0]
