// The CosyVoice2 pipeline: text -> token ids -> LLM speech tokens -> flow mel -> HiFT audio,
// whole-utterance or streaming, over one IGraphRunner.
//
// Mirrors runtime_ref/pipeline.py: the front-end per mode lives here, the streaming schedule (a
// chunk is vocoded when hop + 3 look-ahead tokens exist, the first hop padded so prompt + hop is a
// multiple of chunk_size; the flow re-runs on all tokens so far with streaming masks; the hop
// doubles up to 100 tokens) in SpeechSession, shared with CosyVoice3; the new 2*hop mel frames of a
// chunk go through HiFT with the official cache/cross-fade. The LLM and HiFT parts and the whole
// pipeline (every mode, streaming, bistream) are pinned by golden traces of runtime_ref/pipeline.py
// (tests/golden/pipeline_*.json, bistream_*.json); edge cases by unit tests with a fake runner.
using System;
using System.Collections.Generic;
using SentisTts.Core.Audio;
using SentisTts.Core.Llm;
using SentisTts.Core.Sampling;
using SentisTts.Core.Text;

namespace SentisTts.Core.Pipeline
{
    public enum SynthesisMode { Sft, ZeroShot, CrossLingual, Instruct }

    /// <summary>What the flow is prompted with (empty tokens/mel in sft mode).</summary>
    public sealed class FlowPrompt
    {
        public int[] Tokens = new int[0];
        public float[] Mel = new float[0];  // (frames, n_mels) row-major
        public int MelFrames;
        public float[] Embedding = new float[0];
    }

    /// <summary>Speech tokens -> mel (runtime_ref/flow.py token2mel). `tokens` are the generated
    /// tokens so far; returns the mel of the new tokens (after the prompt frames); with
    /// finalize=false the last pre_lookahead tokens are context only.</summary>
    public interface IFlowStage
    {
        Mel TokensToMel(IList<int> tokens, FlowPrompt prompt, bool streaming, bool finalize);
    }

    /// <summary>A flow stage whose mel readback does not block: Start schedules the graphs (at the
    /// job's first Poll) and the job is polled until the mel is on the host.</summary>
    public interface IAsyncFlowStage : IFlowStage
    {
        ReadbackJob<Mel> Start(IList<int> tokens, FlowPrompt prompt, bool streaming, bool finalize);
    }

    public sealed class SynthesisRequest
    {
        public string Text;
        public Voice Voice;
        public SynthesisMode Mode = SynthesisMode.ZeroShot;
        public string InstructText = "";
        public bool Streaming;
        public int MaxNewTokens = -1;
        public IUniformSource Uniforms;     // sampling randomness (default: seeded by Seed)
        public NoiseSource Noise;           // HiFT noise (default: seeded standard normal)
        public int Seed;
    }

    /// <summary>Standard-normal noise from a seeded System.Random (Box-Muller), for HiFT.</summary>
    public sealed class GaussianNoise
    {
        readonly Random rng;
        readonly int hop, harmonics;
        public GaussianNoise(int seed, int hop, int harmonics) { rng = new Random(seed); this.hop = hop; this.harmonics = harmonics; }
        public float[] Next(int frames)
        {
            var x = new float[hop * frames * harmonics];
            for (int i = 0; i < x.Length; i += 2)
            {
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                double r = Math.Sqrt(-2.0 * Math.Log(u1));
                x[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
                if (i + 1 < x.Length) x[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
            }
            return x;
        }
    }

    /// <summary>The CosyVoice2 pipeline: its front-end (official CosyVoice2 prompts per mode), HiFT with the
    /// official streaming cache/cross-fade, and bistream; the schedule is SpeechSession's.</summary>
    public sealed class TtsPipeline : SpeechPipeline
    {
        public readonly HiftVocoder Hift;
        public readonly int EndOfPromptId;

        public TtsPipeline(BundleManifest manifest, IGraphRunner runner, Qwen2Tokenizer tokenizer, IFlowStage flow)
            : base(ModelFamily.CosyVoice2, "TtsPipeline", manifest, runner, tokenizer, flow)
        {
            Hift = new HiftVocoder(manifest, runner);
            var k = manifest.Constants;
            TokenMelRatio = k.ContainsKey("token_mel_ratio") ? k.Int("token_mel_ratio") : 2;
            var flowC = manifest.Components.Obj("flow");
            PreLookahead = flowC != null && flowC.ContainsKey("pre_lookahead_len") ? flowC.Int("pre_lookahead_len") : 3;
            if (flowC != null && flowC.ContainsKey("mel_lens"))
                foreach (var n in Json.IntArray(flowC.Get("mel_lens"))) MaxFlowTokens = Math.Max(MaxFlowTokens, n / TokenMelRatio);
            var text = manifest.Components.Obj("text");
            EndOfPromptId = text != null && text.ContainsKey("endofprompt_id") ? text.Int("endofprompt_id") : tokenizer.TokenToId("<|endofprompt|>");
        }

        /// <summary>Most new speech tokens for this request (runtime_ref Pipeline.token_cap): what the
        /// largest flow bucket holds after the flow prompt, lowered by MaxNewTokens (&gt;= 0).</summary>
        public override int TokenCap(SynthesisRequest r, FlowPrompt fp)
        {
            int room = MaxFlowTokens < 0 ? -1 : MaxFlowTokens - fp.Tokens.Length;
            if (r.MaxNewTokens < 0) return room;
            return room < 0 ? r.MaxNewTokens : Math.Min(room, r.MaxNewTokens);
        }

        /// <summary>LLM inputs per mode (official CosyVoice2 front-end): zero-shot gets the voice's
        /// prompt text and speech tokens; cross-lingual neither; instruct gets instruct text +
        /// &lt;|endofprompt|&gt; and no prompt speech; sft neither.</summary>
        public override void AssemblePrompt(SynthesisRequest r, out List<int> textIds, out List<int> promptTextIds, out List<int> promptSpeech)
        {
            textIds = Tokenizer.Encode(r.Text);
            promptTextIds = new List<int>();
            promptSpeech = new List<int>();
            switch (r.Mode)
            {
                case SynthesisMode.ZeroShot:
                    if (r.Voice == null) throw new SentisTtsException("zero-shot synthesis needs a voice");
                    promptTextIds.AddRange(r.Voice.PromptTextIds ?? Tokenizer.Encode(r.Voice.PromptText).ToArray());
                    promptSpeech.AddRange(r.Voice.SpeechTokens);
                    break;
                case SynthesisMode.Instruct:
                    promptTextIds.AddRange(Tokenizer.Encode((r.InstructText ?? "").Trim()));
                    promptTextIds.Add(EndOfPromptId);
                    break;
            }
        }

        protected override SpeechSession NewSession(SynthesisRequest r, Action<float[]> onAudio) { return new SynthesisSession(this, r, onAudio, false); }

        protected override SpeechSession NewBistreamSession(SynthesisRequest r, Action<float[]> onAudio) { return new SynthesisSession(this, r, onAudio, true); }

        /// <summary>A CosyVoice2 piece: the LLM (plain or bistream) and HiFT (whole, or streamed with the
        /// official cache/cross-fade: each chunk's new mel frames are pushed).</summary>
        public sealed class SynthesisSession : SpeechSession
        {
            readonly TtsPipeline p;
            readonly NoiseSource noise;
            readonly HiftVocoder.HiftStream stream;

            internal SynthesisSession(TtsPipeline p, SynthesisRequest r, Action<float[]> onAudio, bool bistreamInput)
                : base(p, bistreamInput ? BistreamRequest(r) : r, onAudio)
            {
                this.p = p;
                r = Request;
                List<int> textIds, promptText, promptSpeech;
                p.AssemblePrompt(r, out textIds, out promptText, out promptSpeech);
                noise = r.Noise ?? new GaussianNoise(r.Seed + 1, p.Hift.Hop, p.Hift.H).Next;
                var sampler = new RasSampler(p.Llm.Ras);
                var uniforms = r.Uniforms ?? new SeededUniforms(r.Seed);
                if (r.Streaming) stream = p.Hift.BeginStream(noise);
                if (bistreamInput) Start(p.Llm.BeginBistream(promptText, promptSpeech, sampler, uniforms, p.TokenCap(r, FlowPrompt)));
                else Start(p.Llm.Begin(textIds, promptText, promptSpeech, sampler, uniforms, p.TokenCap(r, FlowPrompt)));
            }

            protected override ReadbackJob<float[]> VocodeJob(Mel mel, int newFrom, bool final)
            {
                if (!Request.Streaming) return new ReadbackJob<float[]>(j => Waveform(j, p.Hift.Mel2WavJob(mel, noise(mel.Frames), null)));
                return stream.PushJob(mel.Slice(Math.Min(mel.Frames, newFrom), mel.Frames), final);
            }

            static IEnumerator<bool> Waveform(ReadbackJob<float[]> job, ReadbackJob<float[][]> inner)
            {
                try
                {
                    while (true)
                    {
                        if (job.Blocking) { inner.Wait(); break; }
                        if (inner.Poll()) break;
                        yield return false;
                    }
                }
                finally { inner.Dispose(); }
                job.Result = inner.Result[0];
            }
        }
    }
}
