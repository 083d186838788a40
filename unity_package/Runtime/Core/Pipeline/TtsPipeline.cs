// End-to-end orchestration: text -> token ids -> LLM speech tokens -> flow mel -> HiFT audio,
// whole-utterance or streaming, over one IGraphRunner.
//
// Mirrors runtime_ref/pipeline.py (modes, streaming schedule): a chunk is vocoded when hop + 3
// look-ahead tokens exist (the first hop padded so prompt + hop is a multiple of chunk_size), the
// flow re-runs on all tokens so far with streaming masks, the new 2*hop mel frames go through
// HiFT with the official cache/cross-fade, and the hop doubles up to 100 tokens. The LLM and HiFT
// parts and the whole pipeline (every mode, streaming) are pinned by golden traces of
// runtime_ref/pipeline.py (tests/golden/pipeline_*.json); edge cases by unit tests with a fake runner.
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

    public sealed class TtsPipeline
    {
        public readonly BundleManifest Manifest;
        public readonly IGraphRunner Runner;
        public readonly Qwen2Tokenizer Tokenizer;
        public readonly LlmGenerator Llm;
        public readonly HiftVocoder Hift;
        public readonly IFlowStage Flow;
        public readonly int SampleRate, TokenHop, TokenMelRatio, PreLookahead;
        public int MaxHop = 100;
        public readonly int EndOfPromptId;
        /// <summary>Speech tokens (prompt + new) the largest flow bucket takes; -1 without a flow component.</summary>
        public readonly int MaxFlowTokens = -1;

        public TtsPipeline(BundleManifest manifest, IGraphRunner runner, Qwen2Tokenizer tokenizer, IFlowStage flow)
        {
            ModelFamilies.Require(manifest, ModelFamily.CosyVoice2, "TtsPipeline");
            Manifest = manifest;
            Runner = runner;
            Tokenizer = tokenizer;
            Llm = new LlmGenerator(manifest, runner);
            Hift = new HiftVocoder(manifest, runner);
            Flow = flow;
            var k = manifest.Constants;
            SampleRate = k.ContainsKey("sample_rate") ? k.Int("sample_rate") : 24000;
            TokenHop = k.ContainsKey("chunk_size") ? k.Int("chunk_size") : 25;
            TokenMelRatio = k.ContainsKey("token_mel_ratio") ? k.Int("token_mel_ratio") : 2;
            var flowC = manifest.Components.Obj("flow");
            PreLookahead = flowC != null && flowC.ContainsKey("pre_lookahead_len") ? flowC.Int("pre_lookahead_len") : 3;
            if (flowC != null && flowC.ContainsKey("mel_lens"))
                foreach (var n in Json.IntArray(flowC.Get("mel_lens"))) MaxFlowTokens = Math.Max(MaxFlowTokens, n / TokenMelRatio);
            var text = manifest.Components.Obj("text");
            EndOfPromptId = text != null && text.ContainsKey("endofprompt_id") ? text.Int("endofprompt_id") : tokenizer.TokenToId("<|endofprompt|>");
        }

        /// <summary>LLM inputs per mode (official CosyVoice2 front-end): zero-shot gets the voice's
        /// prompt text and speech tokens; cross-lingual neither; instruct gets instruct text +
        /// &lt;|endofprompt|&gt; and no prompt speech; sft neither.</summary>
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

        /// <summary>Most new speech tokens for this request (runtime_ref Pipeline.token_cap): what the
        /// largest flow bucket holds after the flow prompt, lowered by MaxNewTokens (&gt;= 0).</summary>
        public int TokenCap(SynthesisRequest r, FlowPrompt fp)
        {
            int room = MaxFlowTokens < 0 ? -1 : MaxFlowTokens - fp.Tokens.Length;
            if (r.MaxNewTokens < 0) return room;
            return room < 0 ? r.MaxNewTokens : Math.Min(room, r.MaxNewTokens);
        }

        /// <summary>runtime_ref PIECE_SPEECH_TOKENS_PER_TEXT_TOKEN: the speaking rate the piece budget assumes.</summary>
        public const double PieceSpeechTokensPerTextToken = 10.0;

        /// <summary>`r.Text` normalised and split into pieces that each fit this bundle with r's prompt
        /// (runtime_ref Pipeline.requests: text_token_budget + TextFrontend.pieces; Japanese as kana or
        /// with readings baked at build time — C# does not convert kanji).</summary>
        public List<string> Pieces(SynthesisRequest r)
        {
            var text = r.Text;
            List<int> ids, promptText, promptSpeech;
            var probe = new SynthesisRequest { Text = "", Voice = r.Voice, Mode = r.Mode, InstructText = r.InstructText };
            AssemblePrompt(probe, out ids, out promptText, out promptSpeech);
            var fp = FlowPromptFor(r);
            int budget = Text.TextSplitter.TokenBudget(Llm.Capacity, MaxFlowTokens, promptText.Count, Math.Max(promptSpeech.Count, fp.Tokens.Length),
                                                       Math.Min(Llm.MaxRatio, PieceSpeechTokensPerTextToken));
            return Text.TextFrontend.Pieces(Tokenizer, text, budget);
        }

        public void AssemblePrompt(SynthesisRequest r, out List<int> textIds, out List<int> promptTextIds, out List<int> promptSpeech)
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

        /// <summary>Synthesize; `onAudio` receives float samples at SampleRate (several calls when streaming).</summary>
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

        /// <summary>A synthesis that advances a few decode steps per call (to spread work over frames).</summary>
        public SynthesisSession Begin(SynthesisRequest r, Action<float[]> onAudio)
        {
            if (Flow == null) throw new SentisTtsException("this pipeline has no flow stage (the bundle needs the flow component)");
            return new SynthesisSession(this, r, onAudio, false);
        }

        /// <summary>Bistream: the text arrives while speech is made (runtime_ref
        /// Pipeline.stream_bistream). `r.Text` is ignored; push text with PushText (tokenized chunk by
        /// chunk, not normalised, as the official front-end does for a text generator) and call
        /// EndText when it is complete. Always streaming; one utterance, capped by the flow's room.</summary>
        public SynthesisSession BeginBistream(SynthesisRequest r, Action<float[]> onAudio)
        {
            if (Flow == null) throw new SentisTtsException("this pipeline has no flow stage (the bundle needs the flow component)");
            return new SynthesisSession(this, r, onAudio, true);
        }

        public sealed class SynthesisSession : IDisposable
        {
            readonly TtsPipeline p;
            readonly SynthesisRequest r;
            readonly Action<float[]> onAudio;
            readonly NoiseSource noise;
            readonly ITokenSession llm;
            readonly LlmGenerator.BistreamSession bistream;
            readonly HiftVocoder.HiftStream stream;
            readonly FlowPrompt flowPrompt;
            int offset, hop, promptPad;
            public bool Done { get; private set; }
            public Generation Result { get { return llm.Result; } }

            internal SynthesisSession(TtsPipeline p, SynthesisRequest r, Action<float[]> onAudio, bool bistreamInput)
            {
                this.p = p; this.r = r; this.onAudio = onAudio;
                List<int> textIds, promptText, promptSpeech;
                if (bistreamInput) r = this.r = new SynthesisRequest { Text = "", Voice = r.Voice, Mode = r.Mode, InstructText = r.InstructText, Streaming = true,
                                                                        MaxNewTokens = r.MaxNewTokens, Uniforms = r.Uniforms, Noise = r.Noise, Seed = r.Seed };
                p.AssemblePrompt(r, out textIds, out promptText, out promptSpeech);
                noise = r.Noise ?? new GaussianNoise(r.Seed + 1, p.Hift.Hop, p.Hift.H).Next;
                flowPrompt = p.FlowPromptFor(r);
                var sampler = new RasSampler(p.Llm.Ras);
                var uniforms = r.Uniforms ?? new SeededUniforms(r.Seed);
                if (bistreamInput) llm = bistream = p.Llm.BeginBistream(promptText, promptSpeech, sampler, uniforms, p.TokenCap(r, flowPrompt));
                else llm = p.Llm.Begin(textIds, promptText, promptSpeech, sampler, uniforms, p.TokenCap(r, flowPrompt));
                if (r.Streaming) stream = p.Hift.BeginStream(noise);
                hop = p.TokenHop;
                int P = flowPrompt.Tokens.Length;
                promptPad = (P + p.TokenHop - 1) / p.TokenHop * p.TokenHop - P;
                if (llm.Done) StartFinish();
            }

            /// <summary>Run up to `steps` decode steps (and the flow/HiFT work they trigger), waiting for
            /// readbacks (tests, offline use). A game uses Tick.</summary>
            public void Advance(int steps)
            {
                for (int k = 0; k < steps && !Done; k++)
                {
                    LlmGenerator.Status st;
                    while ((st = llm.Work(true)) == LlmGenerator.Status.Working) { }
                    if (st == LlmGenerator.Status.Waiting)
                        throw new InvalidOperationException("bistream: the schedule needs more text; PushText or EndText before Advance");
                    if (st == LlmGenerator.Status.Token && r.Streaming && ChunkReady()) { StartChunk(); PollJobs(true); }
                    if (llm.Done) { StartFinish(); PollJobs(true); }
                }
            }

            /// <summary>Bistream only: the next piece of text (tokenized as it is).</summary>
            public void PushText(string text)
            {
                if (bistream == null) throw new InvalidOperationException("PushText needs a session started with BeginBistream");
                if (!string.IsNullOrEmpty(text)) bistream.PushText(p.Tokenizer.Encode(text));
            }

            /// <summary>Bistream only: the text is complete.</summary>
            public void EndText()
            {
                if (bistream == null) throw new InvalidOperationException("EndText needs a session started with BeginBistream");
                bistream.EndText();
            }

            /// <summary>Bistream: waiting for text (Tick returns at once until PushText/EndText).</summary>
            public bool NeedsText { get { return bistream != null && bistream.NeedsText; } }

            bool chunkDue, finishDue, finishing;
            // the flow/HiFT work of a chunk (or of the end) in flight: its mel, then its audio
            ReadbackJob<Mel> melJob;
            ReadbackJob<float[]> wavJob;
            int melFrom;

            bool Busy { get { return melJob != null || wavJob != null; } }

            /// <summary>A chunk's (or the end's) flow/HiFT work is in flight (its readbacks pending).</summary>
            public bool VocodingInFlight { get { return Busy; } }

            /// <summary>Non-blocking: schedules work until `overBudget()` says the frame's time is
            /// used, `maxTokens` tokens came, or a readback is in flight (the LLM's log-probs, a chunk's
            /// mel or audio: the frame ends and the work goes on next frame); a streaming chunk (flow +
            /// HiFT) and the final vocoding each start only at the beginning of a frame or when the
            /// budget still allows; the LLM waits while a chunk is in flight (runtime_ref's order).
            /// Returns Done. Call once per frame.</summary>
            public bool Tick(Func<bool> overBudget, int maxTokens = int.MaxValue)
            {
                int tokens = 0;
                bool first = true;
                while (!Done)
                {
                    if (!first && overBudget()) break;
                    first = false;
                    if (Busy) { if (!PollJobs(false)) break; continue; }
                    if (finishDue) { finishDue = false; StartFinish(); continue; }
                    if (chunkDue) { chunkDue = false; StartChunk(); continue; }
                    if (finishing) break;
                    var st = llm.Work();
                    if (st == LlmGenerator.Status.Waiting) break;
                    if (st == LlmGenerator.Status.Token)
                    {
                        tokens++;
                        if (r.Streaming) chunkDue = ChunkReady();
                    }
                    if (llm.Done) { if (chunkDue) continue; finishDue = true; }
                    if (tokens >= maxTokens) break;
                }
                if (llm.Done && !chunkDue && !Done && !finishDue && !finishing) finishDue = true;
                return Done;
            }

            bool ChunkReady()
            {
                int thisHop = offset == 0 ? hop + promptPad : hop;
                return llm.Result.Tokens.Count - offset >= thisHop + p.PreLookahead;
            }

            ReadbackJob<Mel> StartMel(List<int> tokens, bool streaming, bool finalize)
            {
                var a = p.Flow as IAsyncFlowStage;
                if (a != null) return a.Start(tokens, flowPrompt, streaming, finalize);
                return ReadbackJob<Mel>.Completed(p.Flow.TokensToMel(tokens, flowPrompt, streaming, finalize));
            }

            // streaming: vocode when hop (+ prompt padding for the first) + look-ahead tokens exist
            void StartChunk()
            {
                var tokens = llm.Result.Tokens;
                int thisHop = offset == 0 ? hop + promptPad : hop;
                melJob = StartMel(tokens.GetRange(0, offset + thisHop + p.PreLookahead), true, false);
                melFrom = offset * p.TokenMelRatio;
                offset += thisHop;
                hop = Math.Min(p.MaxHop, hop * 2);
            }

            void StartFinish()
            {
                finishing = true;
                var tokens = llm.Result.Tokens;
                if (tokens.Count == 0 || llm.Result.StopReason == "cancelled") { Done = true; return; }
                melJob = StartMel(tokens, false, true);
                melFrom = offset * p.TokenMelRatio;
            }

            /// <summary>Advance the chunk in flight; true when none is left (wait: block on readbacks).</summary>
            bool PollJobs(bool wait)
            {
                if (melJob != null)
                {
                    if (wait) melJob.Wait(); else if (!melJob.Poll()) return false;
                    var mel = melJob.Result;
                    melJob.Dispose(); melJob = null;
                    if (!r.Streaming) wavJob = new ReadbackJob<float[]>(j => Waveform(j, p.Hift.Mel2WavJob(mel, noise(mel.Frames), null)));
                    else wavJob = stream.PushJob(mel.Slice(Math.Min(mel.Frames, melFrom), mel.Frames), finishing);
                }
                if (wavJob != null)
                {
                    if (wait) wavJob.Wait(); else if (!wavJob.Poll()) return false;
                    var a = wavJob.Result;
                    wavJob.Dispose(); wavJob = null;
                    if (finishing) { Done = true; onAudio(a); }
                    else if (a.Length > 0) onAudio(a);
                }
                return true;
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

            void DisposeJobs()
            {
                if (melJob != null) { melJob.Dispose(); melJob = null; }
                if (wavJob != null) { wavJob.Dispose(); wavJob = null; }
            }

            public void Cancel()
            {
                llm.Result.StopReason = "cancelled";
                DisposeJobs();
                llm.Dispose();
                Done = true;
            }

            public bool Cancelled { get { return llm.Result.StopReason == "cancelled"; } }

            public void Dispose() { DisposeJobs(); llm.Dispose(); }
        }
    }
}
