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
//   streaming (official tts(stream=True)): a chunk is due when hop + pre_lookahead tokens exist
//   (first hop padded so prompt + hop is a multiple of chunk_size; hop doubles up to 100), the flow
//   runs with chunk masks and finalize=false, its new frames are appended to the piece's mel, and
//   the samples not emitted yet are vocoded up to lookahead_frames before its end (official: the
//   whole mel re-vocoded with finalize=false, the same samples); the final call runs the flow
//   non-streaming with finalize=true and the vocoder to the end;
// - noise: the piece's uniform [0, 1) table (the official fixed table's role), drawn as far as it
//   is used from r.Noise (called with a frame count) or a seeded System.Random.
// Pinned by golden traces of runtime_ref (tests/golden/cv3_pipeline_*.json).
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

    public sealed class CosyVoice3Pipeline
    {
        public const string EndOfPrompt = "<|endofprompt|>";
        public readonly BundleManifest Manifest;
        public readonly IGraphRunner Runner;
        public readonly Qwen2Tokenizer Tokenizer;
        public readonly LlmGenerator Llm;
        public readonly CausalHiftVocoder Hift;
        public readonly IFlowStage Flow;
        public readonly int SampleRate, TokenHop, TokenMelRatio, PreLookahead, MaxSilentTokens;
        public readonly string SystemPrompt;
        public readonly HashSet<int> SilentTokens = new HashSet<int>();
        public int MaxHop = 100;
        /// <summary>Speech tokens (prompt + new) the largest flow bucket takes.</summary>
        public readonly int MaxFlowTokens = -1;

        public CosyVoice3Pipeline(BundleManifest manifest, IGraphRunner runner, Qwen2Tokenizer tokenizer, IFlowStage flow)
        {
            ModelFamilies.Require(manifest, ModelFamily.CosyVoice3, "CosyVoice3Pipeline");
            Manifest = manifest; Runner = runner; Tokenizer = tokenizer; Flow = flow;
            Llm = new LlmGenerator(manifest, runner);
            Hift = new CausalHiftVocoder(manifest, runner);
            var k = manifest.Constants;
            if (!k.ContainsKey("system_prompt")) throw new SentisTtsException("cosyvoice3 bundle without constants.system_prompt: re-export it");
            SystemPrompt = k.Str("system_prompt");
            SampleRate = k.ContainsKey("sample_rate") ? k.Int("sample_rate") : 24000;
            TokenHop = k.ContainsKey("chunk_size") ? k.Int("chunk_size") : 25;
            var llmC = manifest.Component("llm");
            foreach (var t in Json.IntArray(llmC.Get("silent_tokens"))) SilentTokens.Add(t);
            MaxSilentTokens = llmC.Int("max_silent_tokens");
            var flowC = manifest.Component("flow");
            TokenMelRatio = flowC.Int("token_mel_ratio");
            PreLookahead = flowC.Int("pre_lookahead_len");
            foreach (var n in Json.IntArray(flowC.Get("mel_lens"))) MaxFlowTokens = Math.Max(MaxFlowTokens, n / TokenMelRatio);
        }

        /// <summary>What the flow is prompted with: the voice's tokens and mel (none in sft mode).</summary>
        public FlowPrompt FlowPromptFor(SynthesisRequest r)
        {
            var fp = new FlowPrompt();
            if (r.Voice == null) return fp;
            fp.Embedding = r.Voice.Embedding;
            if (r.Mode != SynthesisMode.Sft)
            {
                fp.Tokens = r.Voice.SpeechTokens;
                fp.Mel = r.Voice.PromptMel ?? new float[0];
                fp.MelFrames = r.Voice.PromptMelFrames;
            }
            return fp;
        }

        /// <summary>Most new LM tokens: the largest flow bucket's room after the flow prompt, lowered by MaxNewTokens.</summary>
        public int TokenCap(SynthesisRequest r, FlowPrompt fp)
        {
            int room = MaxFlowTokens - fp.Tokens.Length;
            return r.MaxNewTokens < 0 ? room : Math.Min(room, r.MaxNewTokens);
        }

        string WithEndOfPrompt(string text) { return text.Contains(EndOfPrompt) ? text : SystemPrompt + EndOfPrompt + text; }

        /// <summary>LLM inputs per mode (runtime_ref CosyVoice3Pipeline.prompts).</summary>
        public void AssemblePrompt(SynthesisRequest r, out List<int> textIds, out List<int> promptTextIds, out List<int> promptSpeech)
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

        /// <summary>`r.Text` normalised and split into pieces that fit this bundle with r's prompt.</summary>
        public List<string> Pieces(SynthesisRequest r)
        {
            List<int> ids, promptText, promptSpeech;
            AssemblePrompt(new SynthesisRequest { Text = "", Voice = r.Voice, Mode = r.Mode, InstructText = r.InstructText }, out ids, out promptText, out promptSpeech);
            int budget = TextSplitter.TokenBudget(Llm.Capacity, MaxFlowTokens, promptText.Count, Math.Max(promptSpeech.Count, FlowPromptFor(r).Tokens.Length),
                                                  Math.Min(Llm.MaxRatio, TtsPipeline.PieceSpeechTokensPerTextToken));
            return TextFrontend.Pieces(Tokenizer, r.Text, budget);
        }

        /// <summary>Synthesize one piece; `onAudio` receives float samples at SampleRate (several calls when streaming).</summary>
        public Generation Synthesize(SynthesisRequest r, Action<float[]> onAudio, Func<bool> cancel = null)
        {
            using (var s = Begin(r, onAudio))
            {
                while (!s.Done)
                {
                    if (cancel != null && cancel()) { s.Cancel(); break; }
                    s.Advance(1);
                }
                return s.Result;
            }
        }

        public SynthesisSession Begin(SynthesisRequest r, Action<float[]> onAudio)
        {
            if (Flow == null) throw new SentisTtsException("this pipeline has no flow stage (the bundle needs the flow component)");
            return new SynthesisSession(this, r, onAudio);
        }

        public sealed class SynthesisSession : IDisposable
        {
            readonly CosyVoice3Pipeline p;
            readonly SynthesisRequest r;
            readonly Action<float[]> onAudio;
            readonly NoiseSource noise;
            readonly LlmGenerator.GenerationSession llm;
            readonly FlowPrompt flowPrompt;
            /// <summary>The tokens the flow sees (the LM's minus long silences).</summary>
            readonly List<int> tokens = new List<int>();
            readonly Generation result = new Generation();
            readonly CausalHiftVocoder.State voc;
            Mel melAll;
            int offset, hop, promptPad, silentRun, seen;
            bool chunkDue, finishDue;
            public bool Done { get; private set; }
            /// <summary>Tokens passed to the flow, stop reason and prompt length of the LM.</summary>
            public Generation Result { get { return result; } }

            internal SynthesisSession(CosyVoice3Pipeline p, SynthesisRequest r, Action<float[]> onAudio)
            {
                this.p = p; this.r = r; this.onAudio = onAudio;
                List<int> textIds, promptText, promptSpeech;
                p.AssemblePrompt(r, out textIds, out promptText, out promptSpeech);
                noise = r.Noise ?? new UniformNoise(r.Seed + 1, p.Hift.Hop, p.Hift.H).Next;
                flowPrompt = p.FlowPromptFor(r);
                llm = p.Llm.Begin(textIds, promptText, promptSpeech, new RasSampler(p.Llm.Ras), r.Uniforms ?? new SeededUniforms(r.Seed), p.TokenCap(r, flowPrompt));
                result.PromptLength = llm.Result.PromptLength;
                hop = p.TokenHop;
                int P = flowPrompt.Tokens.Length;
                promptPad = (P + p.TokenHop - 1) / p.TokenHop * p.TokenHop - P;
                voc = p.Hift.Start(noise);
                if (r.Streaming) melAll = new Mel(p.Hift.NMels, 0, new float[0]);
                if (llm.Done) Finish();
            }

            /// <summary>The LM's newest tokens through the silent-run filter; true when one reached the flow.</summary>
            bool TakeTokens()
            {
                bool any = false;
                var lm = llm.Result.Tokens;
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

            /// <summary>Run up to `steps` LM decode steps (and the flow/HiFT work they trigger), waiting for readbacks.</summary>
            public void Advance(int steps)
            {
                for (int k = 0; k < steps && !Done; k++)
                {
                    int tok = llm.Step();
                    if (tok >= 0 && TakeTokens() && r.Streaming) Chunk();
                    if (llm.Done) Finish();
                }
            }

            /// <summary>Non-blocking, like TtsPipeline.SynthesisSession.Tick: schedules work until
            /// `overBudget()` says the frame's time is used, `maxTokens` tokens came, or the LLM waits
            /// for a readback. Returns Done. Call once per frame.</summary>
            public bool Tick(Func<bool> overBudget, int maxTokens = int.MaxValue)
            {
                int n = 0;
                bool first = true;
                while (!Done)
                {
                    if (!first && overBudget()) break;
                    first = false;
                    if (finishDue) { Finish(); break; }
                    if (chunkDue) { chunkDue = false; Chunk(); continue; }
                    var st = llm.Work();
                    if (st == LlmGenerator.Status.Waiting) break;
                    if (st == LlmGenerator.Status.Token)
                    {
                        n++;
                        if (TakeTokens() && r.Streaming) chunkDue = ChunkReady();
                    }
                    if (llm.Done) { if (chunkDue) continue; finishDue = true; }
                    if (n >= maxTokens) break;
                }
                if (llm.Done && !chunkDue && !Done && !finishDue) finishDue = true;
                return Done;
            }

            int ThisHop { get { return offset == 0 ? hop + promptPad : hop; } }

            bool ChunkReady() { return tokens.Count - offset >= ThisHop + p.PreLookahead; }

            void Chunk()
            {
                if (!ChunkReady()) return;
                int thisHop = ThisHop;
                var mel = p.Flow.TokensToMel(tokens.GetRange(0, offset + thisHop + p.PreLookahead), flowPrompt, true, false);
                melAll = Mel.Concat(melAll, mel.Slice(offset * p.TokenMelRatio, mel.Frames));
                offset += thisHop;
                hop = Math.Min(p.MaxHop, hop * 2);
                Emit(p.Hift.Vocode(melAll, voc, false));
            }

            void Emit(float[] wav) { if (wav.Length > 0) onAudio(wav); }

            void Finish()
            {
                Done = true;
                result.StopReason = llm.Result.StopReason;
                result.StopToken = llm.Result.StopToken;
                result.Tokens.Clear();
                result.Tokens.AddRange(tokens);
                if (tokens.Count == 0 || llm.Result.StopReason == "cancelled") return;
                var mel = p.Flow.TokensToMel(tokens, flowPrompt, false, true);  // official: the last call is not streaming
                if (!r.Streaming)
                {
                    Emit(p.Hift.Vocode(mel, voc, true));
                    return;
                }
                melAll = Mel.Concat(melAll, mel.Slice(Math.Min(mel.Frames, offset * p.TokenMelRatio), mel.Frames));
                Emit(p.Hift.Vocode(melAll, voc, true));
            }

            public void Cancel()
            {
                llm.Result.StopReason = "cancelled";
                result.StopReason = "cancelled";
                llm.Dispose();
                Done = true;
            }

            public bool Cancelled { get { return result.StopReason == "cancelled"; } }

            public void Dispose() { llm.Dispose(); }
        }
    }
}
