// The CosyVoice2 LLM generation loop (official Qwen2LM.inference, non-bistream) over an
// IGraphRunner. Mirrors runtime_ref/llm.py call for call:
//   sequence = [sos] + embed(prompt_text + text) + [task_id] + embed(prompt speech tokens)
//   min_len = int(len(text) * 2), max_len = int(len(text) * 20)   (target text only)
//   prefill in chunks of `prefill_chunk` rows (last chunk zero-padded), then one token per step:
//   EOS masked while step < min_len, RAS sampling, stop on any stop id.
// The KV cache is passed from one step's outputs to the next step's inputs without being read:
// with the Sentis runner it never leaves the backend. The decode-step embedding is fed to the
// step graph the same way. Host readbacks: the prefill embeddings (once) and each step's logprobs.
using System;
using System.Collections.Generic;
using SentisTts.Core.Sampling;

namespace SentisTts.Core.Llm
{
    public sealed class Generation
    {
        public readonly List<int> Tokens = new List<int>();
        public string StopReason = "max_len";  // "stop_token" | "max_len" | "cancelled"
        public int StopToken = -1;
        public int PromptLength;
    }

    /// <summary>A token generator driven one unit of work at a time (the plain decode loop, or the
    /// bistream schedule of BistreamSession).</summary>
    public interface ITokenSession : IDisposable
    {
        /// <summary>One unit of work; never waits unless `wait` (then readbacks block).</summary>
        LlmGenerator.Status Work(bool wait = false);
        Generation Result { get; }
        bool Done { get; }
        /// <summary>The token of the last Status.Token.</summary>
        int LastToken { get; }
    }

    public sealed partial class LlmGenerator
    {
        readonly IGraphRunner runner;
        readonly BundleManifest manifest;
        public readonly string StepGraph, TextEmbedding, SpeechEmbedding, SpecialEmbedding;
        /// <summary>KV-cache append graph of the rows contract (null: the step graph returns the whole cache).</summary>
        public readonly string AppendGraph;
        /// <summary>The in-graph RAS sampling graph (exporter/llm/sample_graph.py), when the bundle has one.</summary>
        public readonly string SampleGraph;
        /// <summary>Sample on the device with SampleGraph (the token is fed back without a readback; the
        /// host reads it asynchronously and runs up to DeviceSamplingDepth tokens ahead). Off by default:
        /// CPU sampling is the measured choice (docs/unity.md, "In-graph sampling vs CPU sampling").</summary>
        public bool DeviceSampling;
        public const int DeviceSamplingDepth = 12;
        public readonly int Capacity, Chunk, Hidden, Eos, SpeechVocab, SosId, TaskId;
        /// <summary>The score masked while step &lt; min_len (official sampling_ids: index speech_token_size; = Eos for CosyVoice2).</summary>
        public readonly int MinLenMasked;
        public readonly double MinRatio, MaxRatio;
        public readonly RasParams Ras;
        public readonly HashSet<int> StopIds = new HashSet<int>();
        public readonly string[] CacheInputs, CacheOutputs, CacheRows;
        /// <summary>"rows" (llm_step returns the new K/V rows, llm_cache_append writes the cache) or
        /// "full" (older bundles: llm_step returns the whole cache).</summary>
        public readonly string CacheContract;
        public readonly int[] CacheShape;

        public LlmGenerator(BundleManifest manifest, IGraphRunner runner)
        {
            this.manifest = manifest;
            this.runner = runner;
            var c = manifest.Component("llm");
            var g = c.Obj("graphs");
            StepGraph = g.Str("step"); TextEmbedding = g.Str("text_embedding");
            SpeechEmbedding = g.Str("speech_embedding"); SpecialEmbedding = g.Str("special_embedding");
            AppendGraph = g.Str("cache_append");
            SampleGraph = g.Str("sample");
            Capacity = c.Int("max_cache_len"); Chunk = c.Int("prefill_chunk"); Hidden = c.Int("hidden_size");
            Eos = c.Int("eos_token"); SpeechVocab = c.Int("speech_vocab");
            SosId = c.Int("sos_id"); TaskId = c.Int("task_id");
            MinLenMasked = c.ContainsKey("min_len_masked_token") ? c.Int("min_len_masked_token") : Eos;
            MinRatio = c.Double("min_token_text_ratio"); MaxRatio = c.Double("max_token_text_ratio");
            Ras = RasParams.FromManifest(c.Obj("sampling"));
            foreach (var t in Json.IntArray(c.Get("stop_token_ids"))) StopIds.Add(t);
            CacheInputs = c.Arr("cache_inputs").ConvertAll(x => (string)x).ToArray();
            CacheOutputs = c.Arr("cache_outputs").ConvertAll(x => (string)x).ToArray();
            CacheContract = c.Str("cache_contract") ?? "full";
            if (CacheContract != "rows" && CacheContract != "full")
                throw new SentisTtsException("llm cache_contract '" + CacheContract + "' is not supported (rows, full): use the package version matching the exporter");
            CacheRows = CacheContract == "rows" ? c.Arr("cache_rows").ConvertAll(x => (string)x).ToArray() : new string[0];
            if (CacheContract == "rows" && (AppendGraph == null || CacheRows.Length != CacheInputs.Length))
                throw new SentisTtsException("llm: cache_contract 'rows' needs graphs.cache_append and one cache_rows name per cache input (re-export the bundle)");
            CacheShape = new[] { 1, c.Int("num_key_value_heads"), Capacity, c.Int("head_dim") };
        }

        /// <summary>Workers a runner may give each graph: 2 for the weightless KV-cache append graph
        /// (values alternate between them, so the cache is never copied), 1 for every other graph
        /// (a Worker holds its own device copy of the weights).</summary>
        public static Func<string, int> WorkersPerGraph(BundleManifest manifest)
        {
            var c = manifest.Components.Obj("llm");
            var g = c == null ? null : c.Obj("graphs");
            var append = g == null ? null : g.Str("cache_append");
            var sample = g == null ? null : g.Str("sample");
            // the weightless sampling graph: one worker per token in flight (+1), so no token is copied
            return name => name == append ? 2 : name == sample ? DeviceSamplingDepth + 1 : 1;
        }

        // -- embeddings ------------------------------------------------------------------------------
        GraphOutputs Lookup(string graph, IList<int> ids)
        {
            var inName = manifest.Graph(graph).Inputs[0].Name;
            var arr = new int[ids.Count];
            ids.CopyTo(arr, 0);
            using (var t = new HostTensor(new[] { 1, arr.Length }, arr))
                return runner.Run(graph, new Dictionary<string, GraphValue> { { inName, t } });
        }

        float[] LookupRows(string graph, IList<int> ids)
        {
            if (ids.Count == 0) return new float[0];
            using (var o = Lookup(graph, ids))
                return runner.Read(o[manifest.Graph(graph).Outputs[0].Name]).Floats;
        }

        /// <summary>(L, d) rows: [sos, prompt_text + text, task_id, prompt speech tokens] (blocking reads).</summary>
        public float[] LmInput(IList<int> textIds, IList<int> promptTextIds, IList<int> promptSpeech)
        {
            foreach (var t in promptSpeech)
                if (t < 0 || t >= SpeechVocab) throw new SentisTtsException("speech token ids must be in 0.." + (SpeechVocab - 1) + ", got " + t);
            var sosTask = LookupRows(SpecialEmbedding, new[] { SosId, TaskId });
            var allText = new List<int>(promptTextIds);
            allText.AddRange(textIds);
            return Assemble(sosTask, LookupRows(TextEmbedding, allText), LookupRows(SpeechEmbedding, promptSpeech));
        }

        float[] Assemble(float[] sosTask, float[] text, float[] speech)
        {
            var seq = new float[sosTask.Length + text.Length + speech.Length];
            int d = Hidden, p = 0;
            Array.Copy(sosTask, 0, seq, p, d); p += d;
            Array.Copy(text, 0, seq, p, text.Length); p += text.Length;
            Array.Copy(sosTask, d, seq, p, d); p += d;
            Array.Copy(speech, 0, seq, p, speech.Length);
            return seq;
        }

        // -- capacity ----------------------------------------------------------------------------------
        public int MinLength(int nText) { return (int)(nText * MinRatio); }
        public int MaxLength(int nText) { return (int)(nText * MaxRatio); }

        public int NeededSlots(int nText, int nPromptText, int nPromptSpeech)
        {
            return 2 + nPromptText + nText + nPromptSpeech + Math.Max(0, MaxLength(nText) - 1);
        }

        public int MaxTextTokens(int nPromptText, int nPromptSpeech)
        {
            int n = 0;
            while (NeededSlots(n + 1, nPromptText, nPromptSpeech) <= Capacity) n++;
            return n;
        }

        public void CheckCapacity(int nText, int nPromptText, int nPromptSpeech)
        {
            int need = NeededSlots(nText, nPromptText, nPromptSpeech);
            if (need > Capacity)
                throw new LlmCapacityException("text of " + nText + " tokens needs " + need + " KV-cache slots but the bundle has max_cache_len " +
                    Capacity + "; with this prompt (" + nPromptText + " text + " + nPromptSpeech + " speech tokens) at most " +
                    MaxTextTokens(nPromptText, nPromptSpeech) + " text tokens fit: split the text or re-export with a larger --max-cache-len");
        }

        // -- the cached step graph ----------------------------------------------------------------------
        internal sealed class Cache : IDisposable
        {
            public GraphValue[] Values;
            public void Dispose() { if (Values != null) foreach (var v in Values) v.Dispose(); Values = null; }
        }

        Cache NewCache()
        {
            var c = new Cache { Values = new GraphValue[CacheInputs.Length] };
            for (int i = 0; i < CacheInputs.Length; i++) c.Values[i] = runner.Zeros(CacheShape, DType.Float32);
            return c;
        }

        // -- generation -----------------------------------------------------------------------------------
        /// <summary>Speech tokens for `textIds`. `maxNewTokens` (not official, &lt;0 = none) lowers max_len.
        /// `onToken` sees each accepted token (streaming); `cancel` is polled between steps.</summary>
        public Generation Generate(IList<int> textIds, IList<int> promptTextIds, IList<int> promptSpeech, ITokenSampler sampler,
                                   IUniformSource rng, int maxNewTokens = -1, Action<int> onToken = null, Func<bool> cancel = null)
        {
            using (var s = Begin(textIds, promptTextIds, promptSpeech, sampler, rng, maxNewTokens))
            {
                while (!s.Done)
                {
                    if (cancel != null && cancel()) { s.Result.StopReason = "cancelled"; break; }
                    int tok = s.Step();
                    if (tok >= 0 && onToken != null) onToken(tok);
                }
                return s.Result;
            }
        }

        /// <summary>Starts the embedding lookups of the prompt; the prefill chunks and the decode steps
        /// then run one graph call per `Work()` (non-blocking: the log-probs are read back
        /// asynchronously) or one token per `Step()` (waits for readbacks).</summary>
        public GenerationSession Begin(IList<int> textIds, IList<int> promptTextIds, IList<int> promptSpeech, ITokenSampler sampler,
                                       IUniformSource rng, int maxNewTokens = -1)
        {
            int nText = textIds.Count, nPT = promptTextIds.Count, nPS = promptSpeech.Count;
            int minLen = MinLength(nText), maxLen = MaxLength(nText);
            if (maxNewTokens >= 0) maxLen = Math.Min(maxLen, maxNewTokens);
            else CheckCapacity(nText, nPT, nPS);
            if (2 + nPT + nText + nPS + Math.Max(0, maxLen - 1) > Capacity) CheckCapacity(nText, nPT, nPS);
            foreach (var t in promptSpeech)
                if (t < 0 || t >= SpeechVocab) throw new SentisTtsException("speech token ids must be in 0.." + (SpeechVocab - 1) + ", got " + t);
            if (DeviceSampling && SampleGraph == null)
                throw new SentisTtsException("llm: DeviceSampling needs the bundle's llm_sample graph (graphs.sample)");
            var s = new GenerationSession(this, sampler, rng, minLen, maxLen);
            s.Result.PromptLength = 2 + nPT + nText + nPS;
            if (maxLen <= 0) { s.Done = true; return s; }
            var allText = new List<int>(promptTextIds);
            allText.AddRange(textIds);
            s.StartLookups(new[] { SosId, TaskId }, allText, promptSpeech);
            return s;
        }

        public enum Status
        {
            /// <summary>A graph call was scheduled; call Work again (this frame if the budget allows).</summary>
            Working,
            /// <summary>A readback is in flight: come back next frame.</summary>
            Waiting,
            /// <summary>A token was accepted (LastToken).</summary>
            Token,
            Done,
        }

        /// <summary>The KV cache and the step graph calls of one utterance: feeds rows at the current
        /// position (the rows contract's append graph writes the cache; its two workers alternate, so
        /// neither cache is ever copied). Persistent host inputs, refilled per call.</summary>
        internal sealed class Decoder : IDisposable
        {
            readonly LlmGenerator g;
            Cache cache;
            readonly HostTensor posT, validT;
            readonly Dictionary<string, GraphValue> stepFeeds = new Dictionary<string, GraphValue>();
            readonly Dictionary<string, GraphValue> appendFeeds = new Dictionary<string, GraphValue>();
            public int Position;

            public Decoder(LlmGenerator g)
            {
                this.g = g;
                posT = HostTensor.Scalar1(0); validT = HostTensor.Scalar1(0);
                cache = g.NewCache();
            }

            /// <summary>One step call at the current position; the cache values are replaced by the
            /// new ones (old ones disposed). Returns the step outputs (logprobs still inside).</summary>
            public GraphOutputs RunStep(GraphValue embeds, int validLen)
            {
                posT.Ints[0] = Position; validT.Ints[0] = validLen;
                stepFeeds["inputs_embeds"] = embeds;
                stepFeeds["position"] = posT;
                stepFeeds["valid_len"] = validT;
                for (int k = 0; k < g.CacheInputs.Length; k++) stepFeeds[g.CacheInputs[k]] = cache.Values[k];
                var outs = g.runner.Run(g.StepGraph, stepFeeds);
                stepFeeds.Clear();
                if (g.AppendGraph == null)
                {
                    for (int k = 0; k < g.CacheInputs.Length; k++)
                    {
                        cache.Values[k].Dispose();
                        cache.Values[k] = outs.Take(g.CacheOutputs[k]);
                    }
                }
                else
                {
                    appendFeeds["position"] = posT;
                    for (int k = 0; k < g.CacheInputs.Length; k++)
                    {
                        appendFeeds[g.CacheInputs[k]] = cache.Values[k];
                        appendFeeds[g.CacheRows[k]] = outs[g.CacheRows[k]];
                    }
                    using (var app = g.runner.Run(g.AppendGraph, appendFeeds))
                        for (int k = 0; k < g.CacheInputs.Length; k++)
                        {
                            cache.Values[k].Dispose();
                            cache.Values[k] = app.Take(g.CacheOutputs[k]);
                            outs.Take(g.CacheRows[k]).Dispose();
                        }
                    appendFeeds.Clear();
                }
                Position += validLen;
                return outs;
            }

            public void Dispose() { if (cache != null) { cache.Dispose(); cache = null; } }
        }

        public sealed class GenerationSession : ITokenSession
        {
            enum Phase { Embed, Prefill, Logits, Pending, Device }
            readonly LlmGenerator g;
            readonly ITokenSampler sampler;
            readonly IUniformSource rng;
            readonly int minLen, maxLen;
            Phase phase;
            Decoder dec;
            // prompt lookups (special, text, speech) and their host copies
            readonly GraphOutputs[] lookups = new GraphOutputs[3];
            readonly HostTensor[] lookupRows = new HostTensor[3];
            float[] seq;
            int prefillAt, i, pending = -1;
            GraphOutputs stepOuts;  // the step whose log-probs are being read
            // persistent host inputs, refilled per call (no per-step allocation)
            readonly HostTensor logp, idT;
            HostTensor rowsT;
            readonly Dictionary<string, GraphValue> idFeeds = new Dictionary<string, GraphValue>();
            readonly string speechIn, speechOut;
            readonly Generation result = new Generation();
            public Generation Result { get { return result; } }
            public bool Done { get; internal set; }
            public int LastToken { get; private set; }

            internal GenerationSession(LlmGenerator g, ITokenSampler sampler, IUniformSource rng, int minLen, int maxLen)
            {
                this.g = g; this.sampler = sampler; this.rng = rng; this.minLen = minLen; this.maxLen = maxLen;
                onDevice = g.DeviceSampling;
                if (onDevice)
                {
                    uniT = new HostTensor(new[] { 1, 2 }, new float[2]);
                    maskT = new HostTensor(new[] { 1, 1 }, new float[1]);
                    tokRead = new HostTensor(new[] { 1, 1 }, new int[1]);
                    var w = g.manifest.Graph(g.SampleGraph).Input("window").Shape[1];
                    var init = new int[w];
                    for (int k = 0; k < w; k++) init[k] = -1;
                    window = new HostTensor(new[] { 1, w }, init);
                }
                logp = new HostTensor(new[] { 1, g.SpeechVocab }, new float[g.SpeechVocab]);
                idT = new HostTensor(new[] { 1, 1 }, new int[1]);
                speechIn = g.manifest.Graph(g.SpeechEmbedding).Inputs[0].Name;
                speechOut = g.manifest.Graph(g.SpeechEmbedding).Outputs[0].Name;
                if (maxLen > 0) result.Tokens.Capacity = maxLen;
            }

            internal void StartLookups(IList<int> special, IList<int> text, IList<int> speech)
            {
                var graphs = new[] { g.SpecialEmbedding, g.TextEmbedding, g.SpeechEmbedding };
                var ids = new[] { special, text, speech };
                for (int k = 0; k < 3; k++)
                {
                    if (ids[k].Count == 0) continue;
                    lookups[k] = g.Lookup(graphs[k], ids[k]);
                    var v = lookups[k][g.manifest.Graph(graphs[k]).Outputs[0].Name];
                    lookupRows[k] = HostTensor.Zeros(v.Shape, DType.Float32);
                    g.runner.RequestRead(v);
                }
                phase = Phase.Embed;
            }

            bool ReadInto(GraphValue v, HostTensor into, bool wait)
            {
                if (g.runner.TryRead(v, into)) return true;
                if (!wait) return false;
                HostTensor.CopyData(g.runner.Read(v), into);
                return true;
            }

            /// <summary>One unit of work without waiting (wait=true: readbacks block instead of
            /// returning Waiting). The step of an accepted token runs at the next call, so whatever the
            /// caller does with a token (the streaming flow/HiFT chunk) comes before it, exactly like
            /// runtime_ref's token generator.</summary>
            public Status Work(bool wait = false)
            {
                if (Done) return Status.Done;
                switch (phase)
                {
                    case Phase.Embed:
                    {
                        var graphs = new[] { g.SpecialEmbedding, g.TextEmbedding, g.SpeechEmbedding };
                        for (int k = 0; k < 3; k++)
                        {
                            if (lookups[k] == null) continue;
                            if (!ReadInto(lookups[k][g.manifest.Graph(graphs[k]).Outputs[0].Name], lookupRows[k], wait)) return Status.Waiting;
                            lookups[k].Dispose(); lookups[k] = null;
                        }
                        seq = g.Assemble(lookupRows[0].Floats, lookupRows[1] == null ? new float[0] : lookupRows[1].Floats,
                                         lookupRows[2] == null ? new float[0] : lookupRows[2].Floats);
                        dec = new Decoder(g);
                        rowsT = new HostTensor(new[] { 1, g.Chunk, g.Hidden }, new float[g.Chunk * g.Hidden]);
                        phase = Phase.Prefill;
                        return Status.Working;
                    }
                    case Phase.Prefill:
                    {
                        int L = seq.Length / g.Hidden, n = Math.Min(g.Chunk, L - prefillAt);
                        if (dec.Position + L - prefillAt > g.Capacity) throw new LlmCapacityException((dec.Position + L - prefillAt) + " positions exceed max_cache_len " + g.Capacity);
                        Array.Clear(rowsT.Floats, 0, rowsT.Floats.Length);
                        Array.Copy(seq, prefillAt * g.Hidden, rowsT.Floats, 0, n * g.Hidden);
                        var outs = dec.RunStep(rowsT, n);
                        prefillAt += n;
                        if (prefillAt >= L && onDevice) { ScheduleSample(outs); phase = Phase.Device; }
                        else if (prefillAt >= L) { stepOuts = outs; g.runner.RequestRead(outs["logprobs"]); phase = Phase.Logits; }
                        else outs.Dispose();  // only the last chunk's logprobs are used
                        return Status.Working;
                    }
                    case Phase.Pending:
                    {
                        idT.Ints[0] = pending;
                        idFeeds[speechIn] = idT;
                        using (var emb = g.runner.Run(g.SpeechEmbedding, idFeeds))
                            stepOuts = dec.RunStep(emb[speechOut], 1);
                        pending = -1;
                        g.runner.RequestRead(stepOuts["logprobs"]);
                        phase = Phase.Logits;
                        return Status.Working;
                    }
                    case Phase.Device:
                        return WorkOnDevice(wait);
                    default:  // Logits
                    {
                        if (!ReadInto(stepOuts["logprobs"], logp, wait)) return Status.Waiting;
                        stepOuts.Dispose(); stepOuts = null;
                        var lp = logp.Floats;
                        if (i < minLen) lp[g.MinLenMasked] = float.NegativeInfinity;
                        int tok = sampler.Sample(lp, Result.Tokens, rng);
                        if (g.StopIds.Contains(tok))
                        {
                            Result.StopReason = "stop_token"; Result.StopToken = tok;
                            Finish();
                            return Status.Done;
                        }
                        Result.Tokens.Add(tok);
                        LastToken = tok;
                        if (i == maxLen - 1) { Finish(); return Status.Token; }
                        pending = tok;
                        i++;
                        phase = Phase.Pending;
                        return Status.Token;
                    }
                }
            }

            // -- in-graph sampling (DeviceSampling) ------------------------------------------------------
            readonly bool onDevice;
            readonly Queue<GraphValue> inFlight = new Queue<GraphValue>();
            readonly Dictionary<string, GraphValue> sampleFeeds = new Dictionary<string, GraphValue>();
            readonly HostTensor uniT, maskT, tokRead;
            GraphValue deviceToken, window;
            int scheduled;

            /// <summary>llm_sample on `outs`' log-probs: the token stays on the device (the next step's
            /// embedding input) and its 4 bytes are requested back; two uniforms per step; EOS masked
            /// while the token's index &lt; min_len.</summary>
            void ScheduleSample(GraphOutputs outs)
            {
                uniT.Floats[0] = (float)rng.NextUniform(); uniT.Floats[1] = (float)rng.NextUniform();
                maskT.Floats[0] = scheduled < minLen ? 1f : 0f;
                sampleFeeds["logprobs"] = outs["logprobs"]; sampleFeeds["uniforms"] = uniT;
                sampleFeeds["window"] = window; sampleFeeds["mask_eos"] = maskT;
                var smp = g.runner.Run(g.SampleGraph, sampleFeeds);
                sampleFeeds.Clear();
                outs.Dispose();
                var old = deviceToken;
                deviceToken = smp.Take("token");
                if (old != null && !inFlight.Contains(old)) old.Dispose();
                window.Dispose();
                window = smp.Take("window_next");
                smp.Dispose();
                g.runner.RequestRead(deviceToken);
                inFlight.Enqueue(deviceToken);
                scheduled++;
            }

            Status WorkOnDevice(bool wait)
            {
                if (inFlight.Count > 0 && ReadInto(inFlight.Peek(), tokRead, wait))
                {
                    var v = inFlight.Dequeue();
                    if (v != deviceToken) v.Dispose();  // the newest token is still the next step's input
                    int tok = tokRead.Ints[0];
                    if (g.StopIds.Contains(tok))
                    {
                        Result.StopReason = "stop_token"; Result.StopToken = tok;
                        Finish();  // the steps scheduled after it are discarded
                        return Status.Done;
                    }
                    Result.Tokens.Add(tok);
                    LastToken = tok;
                    if (Result.Tokens.Count >= maxLen) Finish();
                    return Status.Token;
                }
                if (scheduled < maxLen && inFlight.Count < DeviceSamplingDepth)
                {
                    idFeeds[speechIn] = deviceToken;
                    GraphOutputs outs;
                    using (var emb = g.runner.Run(g.SpeechEmbedding, idFeeds)) outs = dec.RunStep(emb[speechOut], 1);
                    idFeeds.Clear();
                    ScheduleSample(outs);
                    return Status.Working;
                }
                return Status.Waiting;
            }

            /// <summary>Run until the next accepted token (waiting for readbacks); returns it, or -1 when
            /// generation stopped.</summary>
            public int Step()
            {
                while (true)
                {
                    var st = Work(true);
                    if (st == Status.Token) return LastToken;
                    if (st == Status.Done) return -1;
                }
            }

            void Finish()
            {
                Done = true;
                for (int k = 0; k < 3; k++) if (lookups[k] != null) { lookups[k].Dispose(); lookups[k] = null; }
                if (stepOuts != null) { stepOuts.Dispose(); stepOuts = null; }
                if (onDevice)
                {
                    while (inFlight.Count > 0) { var v = inFlight.Dequeue(); if (v != deviceToken) v.Dispose(); }
                    if (deviceToken != null) { deviceToken.Dispose(); deviceToken = null; }
                    if (window != null) { window.Dispose(); window = null; }
                }
                if (dec != null) { dec.Dispose(); dec = null; }
            }

            public void Dispose() { Finish(); }
        }
    }
}
