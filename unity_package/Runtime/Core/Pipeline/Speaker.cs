// What CosyVoiceSpeaker does, without UnityEngine (so the Sentis stand-in tests run it): one
// utterance at a time over a SpeechPipeline (TtsPipeline for cosyvoice2 bundles, CosyVoice3Pipeline
// for cosyvoice3: SpeechPipeline.ForBundle), spread over frames within a per-frame time budget,
// cancellable, and safe when its owner is destroyed mid-utterance (Destroy cancels the running
// Speak, frees its tensors and disposes the runner; the suspended Speak then returns false without
// touching the runner).
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace SentisTts.Core.Pipeline
{
    public sealed class SpeakerLogic
    {
        readonly Func<SpeechPipeline> load;
        readonly Action<IGraphRunner> unload;
        readonly CancellationTokenSource destroyed = new CancellationTokenSource();
        SpeechPipeline pipeline;
        SpeechSession current;

        public Func<string, Voice> LoadVoice;
        public string DefaultVoice = "";
        public SynthesisMode Mode = SynthesisMode.ZeroShot;
        public string InstructText = "";
        public bool Streaming = true;
        public int Seed;
        /// <summary>Cap on new speech tokens (&lt; 0: the bundle's limits only).</summary>
        public int MaxNewTokens = -1;
        /// <summary>Main-thread seconds of graph scheduling per frame (at least one unit of work runs).</summary>
        public double FrameBudgetSeconds = 0.004;
        public int MaxTokensPerFrame = 16;
        /// <summary>Normalise numbers/symbols and split long text into pieces that fit the bundle (off:
        /// `text` goes to the tokenizer as it is, one piece).</summary>
        public bool SplitText = true;
        /// <summary>Sample speech tokens in the bundle's llm_sample graph (LlmGenerator.DeviceSampling;
        /// the bundle needs it: `python -m exporter.llm.sample_graph BUNDLE`). Bistream samples on the CPU.</summary>
        public bool DeviceSampling;
        /// <summary>Seconds, monotonic (Unity: Time.realtimeSinceStartupAsDouble).</summary>
        public Func<double> Clock = () => System.Diagnostics.Stopwatch.GetTimestamp() / (double)System.Diagnostics.Stopwatch.Frequency;
        /// <summary>Receives the PCM pieces (at the pipeline's SampleRate).</summary>
        public Action<float[]> OnAudio = x => { };

        /// <param name="load">builds the pipeline (and its runner) on first use</param>
        /// <param name="unload">disposes what `load` built (the runner)</param>
        public SpeakerLogic(Func<SpeechPipeline> load, Action<IGraphRunner> unload)
        {
            this.load = load;
            this.unload = unload;
        }

        public bool IsSpeaking { get { return current != null; } }
        public bool IsDestroyed { get { return destroyed.IsCancellationRequested; } }

        public SpeechPipeline Pipeline
        {
            get
            {
                if (IsDestroyed) throw new ObjectDisposedException("speaker", "the speaker was destroyed");
                if (pipeline == null) pipeline = load();
                return pipeline;
            }
        }

        /// <summary>`voice` when given, else DefaultVoice (an empty string means "not given").</summary>
        public static string VoiceName(string voice, string defaultVoice) { return string.IsNullOrEmpty(voice) ? defaultVoice : voice; }

        /// <summary>Speak `text`; `nextFrame(token)` resumes on the next frame and throws
        /// OperationCanceledException when the token is cancelled. Returns false when cancelled or
        /// destroyed.</summary>
        public Task<bool> Speak(string text, string voice, CancellationToken cancellationToken, Func<CancellationToken, Task> nextFrame)
        {
            var name = VoiceName(voice, DefaultVoice);
            try
            {
                if (IsDestroyed) throw new ObjectDisposedException("speaker", "the speaker was destroyed");
                return SpeakWith(text, string.IsNullOrEmpty(name) ? null : LoadVoice(name), cancellationToken, nextFrame);
            }
            catch (Exception e) { return Task.FromException<bool>(e); }  // errors arrive through the task, as from SpeakWith
        }

        /// <summary>Speak with a Voice object (e.g. one made from a recording with VoiceBuilder).</summary>
        public async Task<bool> SpeakWith(string text, Voice v, CancellationToken cancellationToken, Func<CancellationToken, Task> nextFrame)
        {
            var p = Pipeline;
            if (p.Flow == null)
                throw new SentisTtsException("the bundle has no flow component: export it with `sentis-tts export flow` and re-import");
            p.Llm.DeviceSampling = DeviceSampling;
            var whole = new SynthesisRequest { Text = text, Voice = v, Mode = Mode, InstructText = InstructText, Streaming = Streaming, Seed = Seed,
                                               MaxNewTokens = MaxNewTokens };
            // normalise + split into pieces that fit the bundle (runtime_ref's front-end), one LLM session each
            var pieces = SplitText ? p.Pieces(whole) : new System.Collections.Generic.List<string> { text };
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, destroyed.Token))
            {
                var token = linked.Token;
                for (int k = 0; k < pieces.Count; k++)
                {
                    var req = new SynthesisRequest { Text = pieces[k], Voice = v, Mode = Mode, InstructText = InstructText, Streaming = Streaming,
                                                     Seed = Seed + k, MaxNewTokens = MaxNewTokens, Uniforms = new Sampling.SeededUniforms(Seed + k) };
                    var session = p.Begin(req, OnAudio);
                    current = session;
                    try
                    {
                        while (true)
                        {
                            if (token.IsCancellationRequested) { session.Cancel(); return false; }
                            double t0 = Clock();
                            if (session.Tick(() => Clock() - t0 >= FrameBudgetSeconds, MaxTokensPerFrame)) break;
                            await nextFrame(token);
                        }
                        if (session.Cancelled) return false;
                    }
                    catch (OperationCanceledException) { return false; }
                    finally
                    {
                        if (current == session) current = null;
                        session.Dispose();  // idempotent; after Destroy the runner is gone and this frees nothing twice
                    }
                }
                return true;
            }
        }

        /// <summary>Bistream: speak text that arrives while speech is made (`feed`: Push pieces, End
        /// when complete; runtime_ref Pipeline.stream_bistream). Streams audio as it comes; one
        /// utterance (the flow's capacity caps it). Returns false when cancelled or destroyed.</summary>
        public Task<bool> SpeakStream(TextFeed feed, string voice, CancellationToken cancellationToken, Func<CancellationToken, Task> nextFrame)
        {
            var name = VoiceName(voice, DefaultVoice);
            try
            {
                if (IsDestroyed) throw new ObjectDisposedException("speaker", "the speaker was destroyed");
                return SpeakStreamWith(feed, string.IsNullOrEmpty(name) ? null : LoadVoice(name), cancellationToken, nextFrame);
            }
            catch (Exception e) { return Task.FromException<bool>(e); }
        }

        public async Task<bool> SpeakStreamWith(TextFeed feed, Voice v, CancellationToken cancellationToken, Func<CancellationToken, Task> nextFrame)
        {
            var p = Pipeline;
            if (p.Flow == null)
                throw new SentisTtsException("the bundle has no flow component: export it with `sentis-tts export flow` and re-import");
            var req = new SynthesisRequest { Voice = v, Mode = Mode, InstructText = InstructText, Streaming = true, Seed = Seed,
                                             MaxNewTokens = MaxNewTokens, Uniforms = new Sampling.SeededUniforms(Seed) };
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, destroyed.Token))
            {
                var token = linked.Token;
                var session = p.BeginBistream(req, OnAudio);
                current = session;
                bool ended = false;
                Action<string> push = session.PushText;
                try
                {
                    while (true)
                    {
                        if (token.IsCancellationRequested) { session.Cancel(); return false; }
                        if (!ended && feed.Drain(push)) { ended = true; session.EndText(); }
                        double t0 = Clock();
                        if (session.Tick(() => Clock() - t0 >= FrameBudgetSeconds, MaxTokensPerFrame)) break;
                        await nextFrame(token);
                    }
                    return !session.Cancelled;
                }
                catch (OperationCanceledException) { return false; }
                finally
                {
                    if (current == session) current = null;
                    session.Dispose();
                }
            }
        }

        /// <summary>A voice from mono samples at `rate` (the bundle needs the speech_tokenizer and campplus
        /// graphs; reads back two small outputs, blocking — call it at load time).</summary>
        public Voice MakeVoice(IList<double> samples, int rate, string name, string promptText = "")
        {
            var p = Pipeline;
            return VoiceBuilder.Build(p.Manifest, p.Runner, samples, rate, name, promptText);
        }

        /// <summary>The owner is going away: cancel, free the running utterance, dispose the runner.</summary>
        public void Destroy()
        {
            if (IsDestroyed) return;
            destroyed.Cancel();
            if (current != null) { current.Dispose(); current = null; }
            if (pipeline != null) unload(pipeline.Runner);
            pipeline = null;
        }
    }
}
