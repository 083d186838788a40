"""The Fun-CosyVoice3 pipeline on onnxruntime + numpy: the CosyVoice2 `Pipeline` (text front-end,
pieces, LLM loop on the shared llm_step graph, bucketed flow) with what CosyVoice3 changes
(official cosyvoice/cli/model.py `CosyVoice3Model`, cosyvoice.py `CosyVoice3`):

- prompts: the LM requires `<|endofprompt|>` in its text; a prompt that has none gets the
  bundle's system prompt (manifest constants `system_prompt`, the official examples' one) +
  `<|endofprompt|>` in front (zero_shot: before the transcript;
  cross_lingual: alone; instruct2: the instruction gets `<|endofprompt|>` appended);
- vocoder: the causal HiFT graph vocodes the whole mel so far (`CausalVocoder`);
- streaming (official `CosyVoice3Model.tts(stream=True)`/`token2wav`): a chunk when hop + 3
  lookahead tokens are there (first hop padded so prompt + hop is a multiple of 25; hop doubles to
  100), flow with chunk masks and finalize=False, the new mel appended to the utterance's mel, the
  whole mel re-vocoded with finalize=False (the last 8 frames held back) and only the samples past
  what was already emitted returned; the final call (flow non-streaming, finalize=True) likewise.
- silent tokens: a run of more than 5 FSQ silence/breath tokens is cut short before the flow
  (official llm_job; the ids are in the llm manifest);
- noise: the official vocoder uses one fixed uniform table drawn when the model is built; here a
  uniform table per piece from the seed's vocoder stream (same distribution, explicit randomness);
- bistream (text arriving as a stream): the shared runtime_ref/bistream.py schedule with the
  CosyVoice3 ids (eos / fill from the manifest) and the prompt prefix up to <|endofprompt|> fed
  right after sos (`bistream_prompt`), as the official CosyVoice3LM.inference_bistream.
"""
from __future__ import annotations

import numpy as np

from .errors import RuntimeRefError
from .pipeline import ENDOFPROMPT, Pipeline, PipelineError, PieceRequest


class CausalVocoder:
    """The bundle's causal `hift` graph (T frames, finalize semantics, zero right padding) on whole mels."""

    def __init__(self, bundle):
        c = bundle.component("hift")
        if c.get("variant") != "causal":
            raise RuntimeRefError("cosyvoice3 bundles need the causal hift graph (re-export the hift component)")
        self.bundle, self.graph = bundle, c["graph"]
        self.T, self.hop, self.H = int(c["frames"]), int(c["hop_samples"]), int(c["harmonics"])
        self.held_back = int(c["f0_look_right"]) + int(c["conv_pre_look_right"]) + 1  # frames finalize=False withholds
        self.n_mels = bundle.graph(self.graph).input("mel")["shape"][1]

    def noise_table(self, rng: np.random.Generator) -> np.ndarray:
        return rng.random((1, self.hop * self.T, self.H)).astype(np.float32)

    def vocode(self, mel: np.ndarray, table: np.ndarray, *, finalize: bool = True) -> np.ndarray:
        """mel (1, 80, M) -> (n,) samples: 480M (finalize) or 480(M - 8) (finalize=False)."""
        M = mel.shape[2]
        if M > self.T:
            raise RuntimeRefError(f"hift: {M} mel frames exceed the causal vocoder graph's {self.T}; re-export with a "
                                  "larger --hift-frames (at least the largest --flow-len)")
        m = np.zeros((1, self.n_mels, self.T), np.float32)
        m[:, :, :M] = mel
        wav = self.bundle.run(self.graph, {"mel": m, "noise": table})["waveform"][0]
        n = self.hop * (M if finalize else max(0, M - self.held_back))
        return wav[:n].astype(np.float32)


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

    def iter_tokens_for(self, req, sampling, *, sampler="ras", max_new_tokens=None):
        """The LM's tokens minus silent tokens beyond a run of `max_silent_tokens` (official llm_job)."""
        return drop_long_silences(super().iter_tokens_for(req, sampling, sampler=sampler, max_new_tokens=max_new_tokens),
                                  self.llm.meta["silent_tokens"], int(self.llm.meta["max_silent_tokens"]))

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
        return self.vocoder.vocode(mel, self.vocoder.noise_table(noise_rng), finalize=True)

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
        hop, offset, emitted = first_hop, 0, 0
        P = int(req.flow_prompt_tokens.size)
        prompt_pad = int(np.ceil(P / self.chunk_size) * self.chunk_size - P)
        table = self.vocoder.noise_table(noise)
        look, ratio = self.lookahead, self.token_mel_ratio
        mel_all = np.zeros((1, 80, 0), np.float32)
        for tok in token_source:
            tokens.append(tok)
            this_hop = hop + prompt_pad if offset == 0 else hop
            if len(tokens) - offset >= this_hop + look:
                mel = self.token2mel(req, tokens[: offset + this_hop + look], streaming=True, finalize=False)
                mel_all = np.concatenate([mel_all, mel[:, :, offset * ratio:]], axis=2)
                wav = self.vocoder.vocode(mel_all, table, finalize=False)
                offset += this_hop
                hop = min(max_hop, hop * 2)
                if wav.size > emitted:
                    yield wav[emitted:]
                    emitted = wav.size
        if not tokens:
            return
        mel = self.token2mel(req, tokens, streaming=False, finalize=True)  # official: the last call is not streaming
        mel_all = np.concatenate([mel_all, mel[:, :, offset * ratio:]], axis=2)
        yield self.vocoder.vocode(mel_all, table, finalize=True)[emitted:]



def bake_voice_from_wav(bundle, wav_path, *, text: str = "", **kw) -> dict:
    """A CosyVoice3 voice from a WAV: the shared baking (speech_tokenizer_v3 graph, CAM++, prompt mel)."""
    if "speech_tokenizer" not in bundle.manifest.get("components", {}):
        raise RuntimeRefError("cosyvoice3: `voice add` needs the bundle's speech_tokenizer component (speech_tokenizer_v3); "
                              "re-export with `sentis-tts export speech_tokenizer`, or add voices as arrays (embedding, speech_tokens, prompt_mel)")
    from .prompt import bake_voice_from_wav as bake

    return bake(bundle, wav_path, text=text, **kw)
