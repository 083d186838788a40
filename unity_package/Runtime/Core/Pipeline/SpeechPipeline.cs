// What a CosyVoice-style pipeline (text -> LLM speech tokens -> flow mel -> vocoder) offers a
// speaker, whatever its family: the bundle, runner, tokenizer, LLM and flow; the shared front-end
// (the flow prompt, text pieces that fit the bundle, whole-utterance Synthesize); sessions that run
// one piece frame by frame (SpeechSession: the shared schedule). A family subclass gives its LLM
// prompt per mode, its token cap and its session (the vocoder and the tokens the flow sees):
// TtsPipeline (cosyvoice2) and CosyVoice3Pipeline (cosyvoice3). ZipVoice is a different pipeline
// (ZipVoicePipeline): no LLM, no streaming.
using System;
using System.Collections.Generic;
using SentisTts.Core.Llm;
using SentisTts.Core.Text;

namespace SentisTts.Core.Pipeline
{
    public abstract class SpeechPipeline
    {
        public readonly ModelFamily Family;
        public readonly BundleManifest Manifest;
        public readonly IGraphRunner Runner;
        public readonly Qwen2Tokenizer Tokenizer;
        public readonly LlmGenerator Llm;
        public readonly IFlowStage Flow;
        public readonly int SampleRate, TokenHop;
        public int TokenMelRatio { get; protected set; }
        public int PreLookahead { get; protected set; }
        /// <summary>Speech tokens (prompt + new) the largest flow bucket takes; -1 without a flow component.</summary>
        public int MaxFlowTokens { get; protected set; }
        /// <summary>The streaming hop doubles up to this many tokens.</summary>
        public int MaxHop = 100;

        /// <summary>Checks the bundle's family first (a pipeline built on the wrong bundle fails in one line).</summary>
        protected SpeechPipeline(ModelFamily family, string who, BundleManifest manifest, IGraphRunner runner, Qwen2Tokenizer tokenizer, IFlowStage flow)
        {
            ModelFamilies.Require(manifest, family, who);
            Family = family;
            Manifest = manifest; Runner = runner; Tokenizer = tokenizer; Flow = flow;
            Llm = new LlmGenerator(manifest, runner);
            var k = manifest.Constants;
            SampleRate = k.ContainsKey("sample_rate") ? k.Int("sample_rate") : 24000;
            TokenHop = k.ContainsKey("chunk_size") ? k.Int("chunk_size") : 25;
            MaxFlowTokens = -1;
        }

        /// <summary>The pipeline of the bundle's family: cosyvoice2 -> TtsPipeline, cosyvoice3 ->
        /// CosyVoice3Pipeline; any other family is refused in one line naming its speaker.</summary>
        public static SpeechPipeline ForBundle(BundleManifest manifest, IGraphRunner runner, Qwen2Tokenizer tokenizer, IFlowStage flow)
        {
            switch (RequireSpeechFamily(manifest, "SpeechPipeline.ForBundle"))
            {
                case ModelFamily.CosyVoice3: return new CosyVoice3Pipeline(manifest, runner, tokenizer, flow);
                default: return new TtsPipeline(manifest, runner, tokenizer, flow);
            }
        }

        /// <summary>The bundle's family when a SpeechPipeline runs it (cosyvoice2, cosyvoice3); throws one
        /// line for zipvoice (ZipVoicePipeline / ZipVoiceSpeaker) — call it before building a runner.</summary>
        public static ModelFamily RequireSpeechFamily(BundleManifest manifest, string who)
        {
            var f = ModelFamilies.Of(manifest);
            if (f == ModelFamily.ZipVoice)
                throw new SentisTtsException(who + " runs cosyvoice2 and cosyvoice3 bundles; this bundle is zipvoice: use ZipVoiceSpeaker (Core: ZipVoicePipeline)");
            return f;
        }

        /// <summary>What the flow is prompted with: the voice's embedding, and its tokens and mel (none in sft mode).</summary>
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

        /// <summary>Most new speech tokens for this request (runtime_ref Pipeline.token_cap).</summary>
        public abstract int TokenCap(SynthesisRequest r, FlowPrompt fp);

        /// <summary>The LLM's inputs for r's mode (the family's front-end).</summary>
        public abstract void AssemblePrompt(SynthesisRequest r, out List<int> textIds, out List<int> promptTextIds, out List<int> promptSpeech);

        /// <summary>runtime_ref PIECE_SPEECH_TOKENS_PER_TEXT_TOKEN: the speaking rate the piece budget assumes.</summary>
        public const double PieceSpeechTokensPerTextToken = 10.0;

        /// <summary>`r.Text` normalised and split into pieces that each fit this bundle with r's prompt
        /// (runtime_ref Pipeline.requests: text_token_budget + TextFrontend.pieces; Japanese as kana or
        /// with readings baked at build time — C# does not convert kanji).</summary>
        public List<string> Pieces(SynthesisRequest r)
        {
            List<int> ids, promptText, promptSpeech;
            var probe = new SynthesisRequest { Text = "", Voice = r.Voice, Mode = r.Mode, InstructText = r.InstructText };
            AssemblePrompt(probe, out ids, out promptText, out promptSpeech);
            var fp = FlowPromptFor(r);
            int budget = TextSplitter.TokenBudget(Llm.Capacity, MaxFlowTokens, promptText.Count, Math.Max(promptSpeech.Count, fp.Tokens.Length),
                                                  Math.Min(Llm.MaxRatio, PieceSpeechTokensPerTextToken));
            return TextFrontend.Pieces(Tokenizer, r.Text, budget);
        }

        /// <summary>Synthesize one piece, waiting for readbacks (tests, offline use); `onAudio` receives
        /// float samples at SampleRate (several calls when streaming).</summary>
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

        /// <summary>A synthesis of one piece that advances a few units of work per Tick (to spread it over frames).</summary>
        public SpeechSession Begin(SynthesisRequest r, Action<float[]> onAudio)
        {
            RequireFlow();
            return NewSession(r, onAudio);
        }

        /// <summary>Bistream: the text arrives while speech is made (runtime_ref Pipeline.stream_bistream).
        /// `r.Text` is ignored; push text with PushText (tokenized chunk by chunk, not normalised, as
        /// the official front-end does for a text generator) and call EndText when it is complete.
        /// Always streaming; one utterance, capped by the flow's room.</summary>
        public SpeechSession BeginBistream(SynthesisRequest r, Action<float[]> onAudio)
        {
            RequireFlow();
            return NewBistreamSession(r, onAudio);
        }

        protected abstract SpeechSession NewSession(SynthesisRequest r, Action<float[]> onAudio);

        protected abstract SpeechSession NewBistreamSession(SynthesisRequest r, Action<float[]> onAudio);

        void RequireFlow()
        {
            if (Flow == null) throw new SentisTtsException("this pipeline has no flow stage (the bundle needs the flow component)");
        }
    }
}
