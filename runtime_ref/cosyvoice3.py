"""The Fun-CosyVoice3 pipeline on onnxruntime + numpy: the CosyVoice2 `Pipeline` (text front-end,
pieces, LLM loop on the shared llm_step graph, bucketed flow) with what CosyVoice3 changes
(official cosyvoice/cli/model.py `CosyVoice3Model`, cosyvoice.py `CosyVoice3`):

- prompts: the LM requires `<|endofprompt|>` in its text; a prompt that has none gets the
  bundle's system prompt (manifest constants `system_prompt`, the official examples' one) +
  `<|endofprompt|>` in front (zero_shot: before the transcript;
  cross_lingual: alone; instruct2: the instruction gets `<|endofprompt|>` appended);
- vocoder: the causal HiFT graph in chunks of T frames that each re-read the left context they
  need (`CausalVocoder`: exact, the phase carried from chunk to chunk);
- streaming (official `CosyVoice3Model.tts(stream=True)`/`token2wav`): a chunk when hop + 3
  lookahead tokens are there (first hop padded so prompt + hop is a multiple of 25; hop doubles to
  100), flow with chunk masks and finalize=False, the new mel appended to the utterance's mel, the
  samples past what was already emitted vocoded up to the last 8 frames (official: the whole mel
  re-vocoded with finalize=False, the same samples); the final call (flow non-streaming,
  finalize=True) up to the end.
- silent tokens: a run of more than 5 FSQ silence/breath tokens is cut short before the flow
  (official llm_job; the ids are in the llm manifest);
- noise: the official vocoder uses one fixed uniform table drawn when the model is built; here a
  uniform table per piece from the seed's vocoder stream (same distribution, explicit randomness);
- bistream (text arriving as a stream): the shared runtime_ref/bistream.py schedule with the
  CosyVoice3 ids (eos / fill from the manifest) and the prompt prefix up to <|endofprompt|> fed
  right after sos (`bistream_prompt`), as the official CosyVoice3LM.inference_bistream.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .errors import RuntimeRefError
from .pipeline import ENDOFPROMPT, Pipeline, PipelineError, PieceRequest


def causal_chunk_plan(emitted: int, M: int, T: int, context: int, lookahead: int, final: bool) -> list[tuple[int, int, int]]:
    """Graph calls (start, n, end) that emit frames emitted..target of an M-frame mel: a call reads
    n <= T frames from `start` (`context` frames before the first one it emits: the left reach of
    the causal stack, so what it emits is what the whole-utterance pass gives) and emits frames up
    to `end` (exclusive); `lookahead` frames before a call's last frame need mel it has not read,
    unless that frame is the utterance's last and `final` (target = M, else M - lookahead: the
    official finalize=False hold-back)."""
    target = M if final else M - lookahead
    calls = []
    while emitted < target:
        start = max(0, emitted - context)
        n = min(T, M - start)
        end = M if final and start + n == M else min(start + n - lookahead, target)
        calls.append((start, n, end))
        emitted = end
    return calls


class UniformNoiseTable:
    """The causal source's uniform [0, 1) noise per output sample (official: one fixed table from
    sample 0 of every call), drawn from `rng` as far as it is used: growing it in any steps gives the
    same values (one Generator.random stream, samples-major)."""

    def __init__(self, rng: np.random.Generator | None, hop: int, harmonics: int, values: np.ndarray | None = None):
        """values: a fixed table (samples, H) to start from (e.g. the official module's); rng None:
        nothing is drawn past it."""
        self.rng, self.hop, self.H = rng, hop, harmonics
        self.values = np.zeros((0, harmonics), np.float32) if values is None else np.asarray(values, np.float32)

    def frames(self, start: int, n: int) -> np.ndarray:
        """(hop * n, H) values of frames start..start+n."""
        need = self.hop * (start + n) - self.values.shape[0]
        if need > 0:
            if self.rng is None:
                raise RuntimeRefError(f"hift noise: the fixed table holds {self.values.shape[0]} samples, "
                                      f"{self.hop * (start + n)} are needed")
            self.values = np.concatenate([self.values, self.rng.random((need, self.H)).astype(np.float32)])
        return self.values[self.hop * start: self.hop * (start + n)]


class CausalVocoderState:
    """One utterance piece's vocoding so far: frames emitted, the phase at the last one, its noise."""

    def __init__(self, noise: UniformNoiseTable):
        self.noise, self.emitted, self.phase = noise, 0, None


class CausalVocoder:
    """The bundle's causal `hift_{T}` graphs on a growing mel, in chunks of the largest T
    (causal_chunk_plan), each call on the smallest graph that holds it:
    each call reads `context` frames before what it emits, its sine phase pinned at the frame before
    the first one it emits to what the previous call gave there; the last call's n_frames ends the
    utterance exactly (the official finalize=True pass over the whole mel)."""

    def __init__(self, bundle):
        c = bundle.component("hift")
        if c.get("variant") != "causal" or "context_frames" not in c or "graphs" not in c:
            raise RuntimeRefError("cosyvoice3 bundles need the chunked causal hift graphs (variant 'causal' with "
                                  "context_frames and graphs); re-export the hift component with this sentis-tts")
        self.bundle = bundle
        self.graphs = sorted((int(t), g) for t, g in c["graphs"].items())  # (frames, graph name), smallest first
        self.T, self.hop, self.H = self.graphs[-1][0], int(c["hop_samples"]), int(c["harmonics"])
        self.context, self.lookahead = int(c["context_frames"]), int(c["lookahead_frames"])
        self.n_mels = bundle.graph(self.graphs[-1][1]).input("mel")["shape"][1]
        self.calls: Counter[str] = Counter()  # graph calls so far, by graph

    def graph_for(self, n: int) -> tuple[int, str]:
        """The smallest graph (frames, name) that holds an n-frame call."""
        return next((t, g) for t, g in self.graphs if t >= n)

    def start(self, rng: np.random.Generator | None, table: np.ndarray | None = None) -> CausalVocoderState:
        """A piece's vocoding state; its noise drawn from `rng` as far as it is used, after the fixed
        (samples, H) `table` if one is given (the official fixed table; benchmarks)."""
        return CausalVocoderState(UniformNoiseTable(rng, self.hop, self.H, table))

    def run_chunk(self, mel: np.ndarray, noise: np.ndarray, phase_in: np.ndarray, ref_frame: int | None):
        """mel (1, n_mels, n), noise (480n, H), phase_in (H,), ref_frame: None (the phase before
        frame 0 is phase_in) or r (phase[r] = phase_in) -> (waveform (480n,), phase (n, H))."""
        n = mel.shape[2]
        T, graph = self.graph_for(n)
        m = np.zeros((1, self.n_mels, T), np.float32)
        m[:, :, :n] = mel
        z = np.zeros((1, self.hop * T, self.H), np.float32)
        z[0, : self.hop * n] = noise
        ref = np.zeros((1, T, 1), np.float32)
        if ref_frame is not None:
            ref[0, ref_frame, 0] = 1.0
        out = self.bundle.run(graph, {"mel": m, "noise": z, "phase_in": phase_in.reshape(1, 1, self.H).astype(np.float32),
                                      "phase_ref": ref, "n_frames": np.array([n], np.int32)})
        self.calls[graph] += 1
        return out["waveform"][0, : self.hop * n], out["phase"][0, :n]

    def vocode(self, mel: np.ndarray, state: CausalVocoderState, *, final: bool) -> np.ndarray:
        """mel (1, n_mels, M): the piece's whole mel so far -> the samples not emitted yet, up to
        480M (final) or 480(M - lookahead) (more mel will come: the official finalize=False)."""
        pieces = []
        for start, n, end in causal_chunk_plan(state.emitted, mel.shape[2], self.T, self.context, self.lookahead, final):
            pinned = state.emitted > 0
            phase_in = state.phase if pinned else np.zeros(self.H, np.float32)
            wav, phase = self.run_chunk(mel[:, :, start:start + n], state.noise.frames(start, n), phase_in,
                                        state.emitted - 1 - start if pinned else None)
            piece = wav[self.hop * (state.emitted - start): self.hop * (end - start)]
            state.phase, state.emitted = phase[end - 1 - start], end
            pieces.append(piece)
        return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)

    def mel2wav(self, mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.vocode(mel, self.start(rng), final=True)


def drop_long_silences(tokens, silent, max_run: int):
    silent, run = set(int(t) for t in silent), 0
    for t in tokens:
        if t in silent:
            run += 1
            if run > max_run:
                continue
        else:
            run = 0
        yield t


class CosyVoice3Pipeline(Pipeline):
    def __init__(self, bundle, **kw):
        super().__init__(bundle, **kw)
        if "system_prompt" not in bundle.constants:
            raise RuntimeRefError("cosyvoice3 bundle without constants.system_prompt: re-export it")
        self.system_prompt = str(bundle.constants["system_prompt"])

    def make_vocoder(self, bundle):
        return CausalVocoder(bundle)

    def _without_long_silences(self, tokens):
        return drop_long_silences(tokens, self.llm.meta["silent_tokens"], int(self.llm.meta["max_silent_tokens"]))

    def iter_tokens_for(self, req, sampling, *, sampler="ras", max_new_tokens=None):
        """The LM's tokens minus silent tokens beyond a run of `max_silent_tokens` (official llm_job)."""
        return self._without_long_silences(super().iter_tokens_for(req, sampling, sampler=sampler, max_new_tokens=max_new_tokens))

    def bistream_tokens_for(self, req, text_ids, sampling, *, sampler, max_new_tokens):
        """Likewise for text arriving as a stream (official llm_job applies the cut to inference_bistream too)."""
        return self._without_long_silences(super().bistream_tokens_for(req, text_ids, sampling, sampler=sampler,
                                                                       max_new_tokens=max_new_tokens))

    def _eop(self, text: str) -> str:
        return text if ENDOFPROMPT in text else self.system_prompt + ENDOFPROMPT + text

    def prompts(self, voice, mode=None, *, instruct=None):
        mode, llm_text, llm_speech, f_tok, f_mel = super().prompts(voice, mode, instruct=instruct)
        if mode == "zero_shot":
            text = voice.prompt_text
            if voice.prompt_text_ids is not None and voice.prompt_text_ids.size and not text:
                raise PipelineError("cosyvoice3 voices need their transcript as text (prompt_text) to add <|endofprompt|>")
            llm_text = np.asarray(self.text.encode(self._eop(self.text.normalize(text))), np.int32)
        elif mode == "instruct2":
            ins = instruct.strip()
            llm_text = np.asarray(self.text.encode(ins if ENDOFPROMPT in ins else ins + ENDOFPROMPT), np.int32)
        else:  # cross_lingual, sft
            llm_text = np.asarray(self.text.encode(self.system_prompt + ENDOFPROMPT), np.int32)
        return mode, llm_text, llm_speech, f_tok, f_mel

    def mel2wav(self, mel, noise_rng):
        return self.vocoder.mel2wav(mel, noise_rng)

    def bistream_prompt(self, req: PieceRequest) -> tuple[np.ndarray, np.ndarray]:
        """Official CosyVoice3LM.inference_bistream: the prompt text up to and including
        <|endofprompt|> goes right after sos, the rest is mixed with the prompt speech."""
        ids = req.llm_prompt_text_ids
        eop = np.flatnonzero(ids == self.text.tokenizer.token_to_id(ENDOFPROMPT))
        if not eop.size:
            raise PipelineError("cosyvoice3 bistream: the LM prompt text has no <|endofprompt|>")
        return ids[: eop[0] + 1], ids[eop[0] + 1:]

    def _stream_piece(self, req: PieceRequest, token_source, noise, *, first_hop, max_hop):
        tokens: list[int] = []
        hop, offset = first_hop, 0
        P = int(req.flow_prompt_tokens.size)
        prompt_pad = int(np.ceil(P / self.chunk_size) * self.chunk_size - P)
        voc = self.vocoder.start(noise)
        look, ratio = self.lookahead, self.token_mel_ratio
        mel_all = np.zeros((1, 80, 0), np.float32)
        for tok in token_source:
            tokens.append(tok)
            this_hop = hop + prompt_pad if offset == 0 else hop
            if len(tokens) - offset >= this_hop + look:
                mel = self.token2mel(req, tokens[: offset + this_hop + look], streaming=True, finalize=False)
                mel_all = np.concatenate([mel_all, mel[:, :, offset * ratio:]], axis=2)
                offset += this_hop
                hop = min(max_hop, hop * 2)
                wav = self.vocoder.vocode(mel_all, voc, final=False)
                if wav.size:
                    yield wav
        if not tokens:
            return
        mel = self.token2mel(req, tokens, streaming=False, finalize=True)  # official: the last call is not streaming
        mel_all = np.concatenate([mel_all, mel[:, :, offset * ratio:]], axis=2)
        wav = self.vocoder.vocode(mel_all, voc, final=True)
        if wav.size:
            yield wav



def bake_voice_from_wav(bundle, wav_path, *, text: str = "", **kw) -> dict:
    """A CosyVoice3 voice from a WAV: the shared baking (speech_tokenizer_v3 graph, CAM++, prompt mel)."""
    if "speech_tokenizer" not in bundle.manifest.get("components", {}):
        raise RuntimeRefError("cosyvoice3: `voice add` needs the bundle's speech_tokenizer component (speech_tokenizer_v3); "
                              "re-export with `sentis-tts export speech_tokenizer`, or add voices as arrays (embedding, speech_tokens, prompt_mel)")
    from .prompt import bake_voice_from_wav as bake

    return bake(bundle, wav_path, text=text, **kw)
