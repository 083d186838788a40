// The Fun-CosyVoice3 pipeline over one IGraphRunner: text -> token ids -> LLM speech tokens ->
// flow mel -> causal HiFT audio, whole-utterance or streaming. Mirrors runtime_ref/cosyvoice3.py
// CosyVoice3Pipeline (official cosyvoice/cli/model.py CosyVoice3Model) call for call, on the shared
// parts of the CosyVoice2 runtime (LlmGenerator with the CosyVoice3 ids from the manifest, FlowStage,
// Qwen2Tokenizer, RasSampler); what CosyVoice3 changes lives here:
// - prompts: the LM text must contain <|endofprompt|>; a prompt without one gets the bundle's
//   constants.system_prompt + <|endofprompt|> in front (zero-shot: before the transcript;
//   cross-lingual / sft: alone); an instruction gets <|endofprompt|> appended;
// - silent tokens: a run of more than llm.max_silent_tokens of llm.silent_tokens is cut short
//   before the flow (official llm_job; the LM itself still sees them);
// - vocoder: CausalHiftVocoder vocodes the piece's mel in exact chunks of the graph's T frames;
//   streaming (official tts(stream=True)) on SpeechSession's schedule, shared with CosyVoice2: a
//   chunk is due when hop + pre_lookahead tokens exist (first hop padded so prompt + hop is a
//   multiple of chunk_size; hop doubles up to 100), the flow runs with chunk masks and
//   finalize=false, its new frames are appended to the piece's mel, and
//   the samples not emitted yet are vocoded up to lookahead_frames before its end (official: the
//   whole mel re-vocoded with finalize=false, the same samples); the final call runs the flow
//   non-streaming with finalize=true and the vocoder to the end;
// - noise: the piece's uniform [0, 1) table (the official fixed table's role), drawn as far as it
//   is used from r.Noise (called with a frame count) or a seeded System.Random;
// - bistream: the shared LlmGenerator.BistreamSession with the CosyVoice3 ids and the prompt text
//   up to <|endofprompt|> fed right after sos (runtime_ref bistream_prompt). Long silences are cut
//   there too, as the official llm_job does (runtime_ref's bistream does not cut them; the bistream
//   traces hold no such run).
// Pinned by golden traces of runtime_ref (tests/golden/cv3_pipeline_*.json, cv3_bistream_*.json).
using System;
using System.Collections.Generic;
using SentisTts.Core.Audio;
using SentisTts.Core.Llm;
using SentisTts.Core.Sampling;
using SentisTts.Core.Text;

namespace SentisTts.Core.Pipeline
{
    /// <summary>Uniform [0, 1) noise from a seeded System.Random, for the causal HiFT's table.</summary>
    public sealed class UniformNoise
    {
        readonly Random rng;
        readonly int hop, harmonics;
        public UniformNoise(int seed, int hop, int harmonics) { rng = new Random(seed); this.hop = hop; this.harmonics = harmonics; }
        public float[] Next(int frames)
        {
            var x = new float[hop * frames * harmonics];
            for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
            return x;
        }
    }

    public sealed class CosyVoice3Pipeline : SpeechPipeline
    {
        public const string EndOfPrompt = "<|endofprompt|>";
        public readonly CausalHiftVocoder Hift;
        public readonly int MaxSilentTokens;
        public readonly string SystemPrompt;
        public readonly HashSet<int> SilentTokens = new HashSet<int>();

        public CosyVoice3Pipeline(BundleManifest manifest, IGraphRunner runner, Qwen2Tokenizer tokenizer, IFlowStage flow)
            : base(ModelFamily.CosyVoice3, "CosyVoice3Pipeline", manifest, runner, tokenizer, flow)
        {
            Hift = new CausalHiftVocoder(manifest, runner);
            var k = manifest.Constants;
            if (!k.ContainsKey("system_prompt")) throw new SentisTtsException("cosyvoice3 bundle without constants.system_prompt: re-export it");
            SystemPrompt = k.Str("system_prompt");
            var llmC = manifest.Component("llm");
            foreach (var t in Json.IntArray(llmC.Get("silent_tokens"))) SilentTokens.Add(t);
            MaxSilentTokens = llmC.Int("max_silent_tokens");
            var flowC = manifest.Component("flow");
            TokenMelRatio = flowC.Int("token_mel_ratio");
            PreLookahead = flowC.Int("pre_lookahead_len");
            foreach (var n in Json.IntArray(flowC.Get("mel_lens"))) MaxFlowTokens = Math.Max(MaxFlowTokens, n / TokenMelRatio);
        }

        /// <summary>Most new LM tokens: the largest flow bucket's room after the flow prompt, lowered by MaxNewTokens.</summary>
        public override int TokenCap(SynthesisRequest r, FlowPrompt fp)
        {
            int room = MaxFlowTokens - fp.Tokens.Length;
            return r.MaxNewTokens < 0 ? room : Math.Min(room, r.MaxNewTokens);
        }

        string WithEndOfPrompt(string text) { return text.Contains(EndOfPrompt) ? text : SystemPrompt + EndOfPrompt + text; }

        /// <summary>LLM inputs per mode (runtime_ref CosyVoice3Pipeline.prompts).</summary>
        public override void AssemblePrompt(SynthesisRequest r, out List<int> textIds, out List<int> promptTextIds, out List<int> promptSpeech)
        {
            textIds = Tokenizer.Encode(r.Text);
            promptSpeech = new List<int>();
            switch (r.Mode)
            {
                case SynthesisMode.ZeroShot:
                    if (r.Voice == null) throw new SentisTtsException("zero-shot synthesis needs a voice");
                    if (string.IsNullOrEmpty(r.Voice.PromptText))
                        throw new SentisTtsException("voice " + r.Voice.Name + ": cosyvoice3 zero-shot needs the voice's transcript as text (prompt_text) to add " + EndOfPrompt + "; use cross-lingual mode or re-bake it with --text");
                    promptTextIds = Tokenizer.Encode(WithEndOfPrompt(TextNormalizer.Normalize(r.Voice.PromptText)));
                    promptSpeech.AddRange(r.Voice.SpeechTokens);
                    break;
                case SynthesisMode.Instruct:
                    var ins = (r.InstructText ?? "").Trim();
                    if (ins.Length == 0) throw new SentisTtsException("instruct mode needs an instruction text (e.g. 'Speak happily.')");
                    promptTextIds = Tokenizer.Encode(ins.Contains(EndOfPrompt) ? ins : ins + EndOfPrompt);
                    break;
                default:  // cross-lingual, sft
                    promptTextIds = Tokenizer.Encode(SystemPrompt + EndOfPrompt);
                    break;
            }
        }

        protected override SpeechSession NewSession(SynthesisRequest r, Action<float[]> onAudio) { return new SynthesisSession(this, r, onAudio, false); }

        /// <summary>Bistream (runtime_ref CosyVoice3Pipeline.bistream_prompt, official
        /// CosyVoice3LM.inference_bistream): the prompt text up to and including the first
        /// &lt;|endofprompt|&gt; is fed right after sos, the rest is mixed with the prompt speech.</summary>
        protected override SpeechSession NewBistreamSession(SynthesisRequest r, Action<float[]> onAudio) { return new SynthesisSession(this, r, onAudio, true); }

        /// <summary>The LM prompt text split for bistream: (fed after sos, mixed with the prompt speech).</summary>
        public void SplitBistreamPrompt(List<int> promptText, out List<int> prefix, out List<int> mixed)
        {
            int eop = promptText.IndexOf(Tokenizer.TokenToId(EndOfPrompt));
            if (eop < 0) throw new SentisTtsException("cosyvoice3 bistream: the LM prompt text has no " + EndOfPrompt);
            prefix = promptText.GetRange(0, eop + 1);
            mixed = promptText.GetRange(eop + 1, promptText.Count - eop - 1);
        }

        /// <summary>A CosyVoice3 piece: the LM's tokens minus long silences go to the flow; the causal
        /// vocoder vocodes the piece's mel (streaming: appended chunk by chunk) in exact chunks.</summary>
        public sealed class SynthesisSession : SpeechSession
        {
            readonly CosyVoice3Pipeline p;
            /// <summary>The tokens the flow sees (the LM's minus long silences).</summary>
            readonly List<int> tokens = new List<int>();
            readonly Generation result = new Generation();
            readonly CausalHiftVocoder.State voc;
            Mel melAll;
            int silentRun, seen;
            /// <summary>Tokens passed to the flow, stop reason and prompt length of the LM.</summary>
            public override Generation Result { get { return result; } }

            internal SynthesisSession(CosyVoice3Pipeline p, SynthesisRequest r, Action<float[]> onAudio, bool bistreamInput)
                : base(p, bistreamInput ? BistreamRequest(r) : r, onAudio)
            {
                this.p = p;
                r = Request;
                List<int> textIds, promptText, promptSpeech;
                p.AssemblePrompt(r, out textIds, out promptText, out promptSpeech);
                var noise = r.Noise ?? new UniformNoise(r.Seed + 1, p.Hift.Hop, p.Hift.H).Next;
                voc = p.Hift.Start(noise);
                if (r.Streaming) melAll = new Mel(p.Hift.NMels, 0, new float[0]);
                var sampler = new RasSampler(p.Llm.Ras);
                var uniforms = r.Uniforms ?? new SeededUniforms(r.Seed);
                ITokenSession llm;
                if (bistreamInput)
                {
                    List<int> prefix, mixed;
                    p.SplitBistreamPrompt(promptText, out prefix, out mixed);
                    llm = p.Llm.BeginBistream(mixed, promptSpeech, sampler, uniforms, p.TokenCap(r, FlowPrompt), prefix);
                }
                else llm = p.Llm.Begin(textIds, promptText, promptSpeech, sampler, uniforms, p.TokenCap(r, FlowPrompt));
                result.PromptLength = llm.Result.PromptLength;
                Start(llm);
            }

            protected override List<int> FlowTokens { get { return tokens; } }

            /// <summary>The LM's newest tokens through the silent-run filter; true when one reached the flow.</summary>
            protected override bool TakeTokens()
            {
                bool any = false;
                var lm = Llm.Result.Tokens;
                for (; seen < lm.Count; seen++)
                {
                    int t = lm[seen];
                    if (p.SilentTokens.Contains(t)) { if (++silentRun > p.MaxSilentTokens) continue; }
                    else silentRun = 0;
                    tokens.Add(t);
                    any = true;
                }
                return any;
            }

            protected override void Finishing()
            {
                result.StopReason = Llm.Result.StopReason;
                result.StopToken = Llm.Result.StopToken;
                result.Tokens.Clear();
                result.Tokens.AddRange(tokens);
            }

            protected override ReadbackJob<float[]> VocodeJob(Mel mel, int newFrom, bool final)
            {
                if (!Request.Streaming) return p.Hift.VocodeJob(mel, voc, true);
                melAll = Mel.Concat(melAll, mel.Slice(Math.Min(mel.Frames, newFrom), mel.Frames));
                return p.Hift.VocodeJob(melAll, voc, final);
            }
        }
    }
}
