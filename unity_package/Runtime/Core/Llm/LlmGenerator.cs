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

    public sealed class LlmGenerator
    {
        readonly IGraphRunner runner;
        readonly BundleManifest manifest;
        public readonly string StepGraph, TextEmbedding, SpeechEmbedding, SpecialEmbedding;
        public readonly int Capacity, Chunk, Hidden, Eos, SpeechVocab, SosId, TaskId;
        public readonly double MinRatio, MaxRatio;
        public readonly RasParams Ras;
        public readonly HashSet<int> StopIds = new HashSet<int>();
        public readonly string[] CacheInputs, CacheOutputs;
        public readonly int[] CacheShape;

        public LlmGenerator(BundleManifest manifest, IGraphRunner runner)
        {
            this.manifest = manifest;
            this.runner = runner;
            var c = manifest.Component("llm");
            var g = c.Obj("graphs");
            StepGraph = g.Str("step"); TextEmbedding = g.Str("text_embedding");
            SpeechEmbedding = g.Str("speech_embedding"); SpecialEmbedding = g.Str("special_embedding");
            Capacity = c.Int("max_cache_len"); Chunk = c.Int("prefill_chunk"); Hidden = c.Int("hidden_size");
            Eos = c.Int("eos_token"); SpeechVocab = c.Int("speech_vocab");
            SosId = c.Int("sos_id"); TaskId = c.Int("task_id");
            MinRatio = c.Double("min_token_text_ratio"); MaxRatio = c.Double("max_token_text_ratio");
            Ras = RasParams.FromManifest(c.Obj("sampling"));
            foreach (var t in Json.IntArray(c.Get("stop_token_ids"))) StopIds.Add(t);
            CacheInputs = c.Arr("cache_inputs").ConvertAll(x => (string)x).ToArray();
            CacheOutputs = c.Arr("cache_outputs").ConvertAll(x => (string)x).ToArray();
            CacheShape = new[] { 1, c.Int("num_key_value_heads"), Capacity, c.Int("head_dim") };
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

        /// <summary>(L, d) rows: [sos, prompt_text + text, task_id, prompt speech tokens].</summary>
        public float[] LmInput(IList<int> textIds, IList<int> promptTextIds, IList<int> promptSpeech)
        {
            foreach (var t in promptSpeech)
                if (t < 0 || t >= SpeechVocab) throw new SentisTtsException("speech token ids must be in 0.." + (SpeechVocab - 1) + ", got " + t);
            var sosTask = LookupRows(SpecialEmbedding, new[] { SosId, TaskId });
            var allText = new List<int>(promptTextIds);
            allText.AddRange(textIds);
            var text = LookupRows(TextEmbedding, allText);
            var speech = LookupRows(SpeechEmbedding, promptSpeech);
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

        /// <summary>One step call; replaces the cache values by the new ones (old ones disposed).
        /// Returns the step outputs (logprobs still inside, not read).</summary>
        GraphOutputs Step(GraphValue embeds, Cache cache, int position, int validLen)
        {
            var feeds = new Dictionary<string, GraphValue>();
            feeds["inputs_embeds"] = embeds;
            var pos = HostTensor.Scalar1(position);
            var valid = HostTensor.Scalar1(validLen);
            feeds["position"] = pos;
            feeds["valid_len"] = valid;
            for (int i = 0; i < CacheInputs.Length; i++) feeds[CacheInputs[i]] = cache.Values[i];
            var outs = runner.Run(StepGraph, feeds);
            pos.Dispose(); valid.Dispose();
            for (int i = 0; i < CacheInputs.Length; i++)
            {
                cache.Values[i].Dispose();
                cache.Values[i] = outs.Take(CacheOutputs[i]);
            }
            return outs;
        }

        float[] ReadLogprobs(GraphOutputs outs)
        {
            return runner.Read(outs["logprobs"]).Floats;
        }

        /// <summary>Feed (L, d) rows in chunks (the last zero-padded); returns logprobs after the last row.</summary>
        float[] Prefill(float[] seq, Cache cache, ref int position)
        {
            int L = seq.Length / Hidden;
            if (position + L > Capacity) throw new LlmCapacityException((position + L) + " positions exceed max_cache_len " + Capacity);
            float[] logp = null;
            for (int s = 0; s < L; s += Chunk)
            {
                int n = Math.Min(Chunk, L - s);
                var rows = new float[Chunk * Hidden];
                Array.Copy(seq, s * Hidden, rows, 0, n * Hidden);
                using (var t = new HostTensor(new[] { 1, Chunk, Hidden }, rows))
                using (var outs = Step(t, cache, position, n))
                {
                    if (s + Chunk >= L) logp = ReadLogprobs(outs);  // only the last chunk's logprobs are used
                }
                position += n;
            }
            return logp;
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

        /// <summary>Prefill now; then one sampled token per `Step()` call (its step graph runs at the
        /// next call), so a caller can spread generation over frames (the Unity speaker does).</summary>
        public GenerationSession Begin(IList<int> textIds, IList<int> promptTextIds, IList<int> promptSpeech, ITokenSampler sampler,
                                       IUniformSource rng, int maxNewTokens = -1)
        {
            int nText = textIds.Count, nPT = promptTextIds.Count, nPS = promptSpeech.Count;
            int minLen = MinLength(nText), maxLen = MaxLength(nText);
            if (maxNewTokens >= 0) maxLen = Math.Min(maxLen, maxNewTokens);
            else CheckCapacity(nText, nPT, nPS);
            if (2 + nPT + nText + nPS + Math.Max(0, maxLen - 1) > Capacity) CheckCapacity(nText, nPT, nPS);
            var seq = LmInput(textIds, promptTextIds, promptSpeech);
            var s = new GenerationSession(this, sampler, rng, minLen, maxLen);
            s.Result.PromptLength = seq.Length / Hidden;
            if (maxLen <= 0) { s.Done = true; return s; }
            s.CacheState = NewCache();
            int pos = 0;
            s.Logp = Prefill(seq, s.CacheState, ref pos);
            s.Position = pos;
            return s;
        }

        public sealed class GenerationSession : IDisposable
        {
            readonly LlmGenerator g;
            readonly ITokenSampler sampler;
            readonly IUniformSource rng;
            readonly int minLen, maxLen;
            internal Cache CacheState;
            internal float[] Logp;
            internal int Position;
            int i;
            public readonly Generation Result = new Generation();
            public bool Done { get; internal set; }

            internal GenerationSession(LlmGenerator g, ITokenSampler sampler, IUniformSource rng, int minLen, int maxLen)
            {
                this.g = g; this.sampler = sampler; this.rng = rng; this.minLen = minLen; this.maxLen = maxLen;
            }

            int pending = -1;  // accepted token whose step graph has not run yet

            /// <summary>Run the step graph of the previous token (if any), then sample one token;
            /// returns the accepted token, or -1 when generation stopped. The step of a token runs at
            /// the start of the next call, so whatever the caller does with a token (the streaming
            /// flow/HiFT chunk) comes before it, exactly like runtime_ref's token generator.</summary>
            public int Step()
            {
                if (Done) return -1;
                if (pending >= 0)
                {
                    using (var emb = g.Lookup(g.SpeechEmbedding, new[] { pending }))
                    using (var outs = g.Step(emb[g.manifest.Graph(g.SpeechEmbedding).Outputs[0].Name], CacheState, Position, 1))
                        Logp = g.ReadLogprobs(outs);
                    Position++;
                    pending = -1;
                }
                if (i < minLen) Logp[g.Eos] = float.NegativeInfinity;
                int tok = sampler.Sample(Logp, Result.Tokens, rng);
                if (g.StopIds.Contains(tok))
                {
                    Result.StopReason = "stop_token"; Result.StopToken = tok;
                    Finish();
                    return -1;
                }
                Result.Tokens.Add(tok);
                if (i == maxLen - 1) { Finish(); return tok; }
                pending = tok;
                i++;
                return tok;
            }

            void Finish()
            {
                Done = true;
                if (CacheState != null) { CacheState.Dispose(); CacheState = null; }
            }

            public void Dispose() { Finish(); }
        }
    }
}
