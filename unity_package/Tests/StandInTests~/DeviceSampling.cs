// The in-graph sampling design, measured on the stand-in next to the shipped one (CPU sampling after
// an asynchronous log-prob readback). A minimal driver, test code only (not in Core): the decode
// loop keeps the token on the device — speech embedding <- the previous llm_sample's token, step,
// KV-cache append, llm_sample (exporter/llm/sample_graph.py: RAS with the uniforms as an input, the
// repetition window as a device tensor fed back) — and reads back only the 4-byte token,
// asynchronously; it runs ahead of the host by up to `depth` unconfirmed tokens, so a token no longer
// costs a readback latency, and a stop token is seen `latency` frames late (the steps scheduled
// meanwhile are discarded). No prefill (measured from an empty cache), no flow/HiFT.
using System;
using System.Collections.Generic;
using SentisStandIn;
using SentisTts.Core;
using SentisTts.Sentis;
using Unity.InferenceEngine;

namespace SentisTts.Tests
{
    /// <summary>llm_sample on the stand-in: token = a fixed sequence (EOS at `eosAt`), window shifted.</summary>
    public sealed class SampleExecutor : IExecutor
    {
        readonly int eos, eosAt;
        int calls;
        public string Graph { get { return "llm_sample"; } }
        public SampleExecutor(int eos, int eosAt) { this.eos = eos; this.eosAt = eosAt; }

        public Dictionary<string, Storage> Run(Dictionary<string, Storage> inputs)
        {
            var w = inputs["window"].Ints;
            int tok = calls == eosAt ? eos : 100 + calls % 6000;
            calls++;
            var next = new int[w.Length];
            Array.Copy(w, 1, next, 0, w.Length - 1);
            next[w.Length - 1] = tok;
            return new Dictionary<string, Storage> { { "token", Storage.Output(new[] { 1, 1 }, new[] { tok }) }, { "window_next", Storage.Output(new[] { 1, w.Length }, next) } };
        }
    }

    public sealed class DeviceSampledDecode
    {
        public int Tokens, Wasted, Frames, StopFrame = -1;

        /// <summary>Decode until the host sees EOS; at most `perFrame` steps scheduled per frame and
        /// `depth` tokens in flight.</summary>
        public static DeviceSampledDecode Run(BundleManifest m, SentisGraphRunner runner, int eos, int perFrame, int depth, Action<int, int> afterFrame = null, int maxFrames = 10000)
        {
            var c = m.Component("llm");
            var g = c.Obj("graphs");
            string step = g.Str("step"), append = g.Str("cache_append"), speech = g.Str("speech_embedding");
            var cacheIn = c.Arr("cache_inputs").ConvertAll(x => (string)x);
            var cacheOut = c.Arr("cache_outputs").ConvertAll(x => (string)x);
            var rows = c.Arr("cache_rows").ConvertAll(x => (string)x);
            var shape = new[] { 1, c.Int("num_key_value_heads"), c.Int("max_cache_len"), c.Int("head_dim") };
            var cache = new GraphValue[cacheIn.Count];
            for (int k = 0; k < cache.Length; k++) cache[k] = runner.Zeros(shape, DType.Float32);
            GraphValue token = new HostTensor(new[] { 1, 1 }, new[] { 0 });
            GraphValue window = new HostTensor(new[] { 1, 10 }, new[] { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 });
            var pos = HostTensor.Scalar1(0); var valid = HostTensor.Scalar1(1);
            var uniforms = new HostTensor(new[] { 1, 2 }, new float[2]);
            var mask = new HostTensor(new[] { 1, 1 }, new float[1]);
            var inFlight = new Queue<GraphValue>();
            var readInto = new HostTensor(new[] { 1, 1 }, new int[1]);
            var f1 = new Dictionary<string, GraphValue>(); var f2 = new Dictionary<string, GraphValue>();
            var f3 = new Dictionary<string, GraphValue>(); var f4 = new Dictionary<string, GraphValue>();
            var r = new DeviceSampledDecode();
            int position = 0;
            bool stopped = false;
            while (!stopped)
            {
                // the host learns the tokens whose readback finished
                while (inFlight.Count > 0 && runner.TryRead(inFlight.Peek(), readInto))
                {
                    var v = inFlight.Dequeue();
                    if (v != token) v.Dispose();  // the newest token is still the next embedding's input
                    if (readInto.Ints[0] == eos) { stopped = true; r.StopFrame = Device.Frame; break; }
                    r.Tokens++;
                }
                if (stopped) break;
                for (int s = 0; s < perFrame && inFlight.Count < depth; s++)
                {
                    f1["speech_ids"] = token;
                    var emb = runner.Run(speech, f1);
                    pos.Ints[0] = position;
                    f2["inputs_embeds"] = emb["speech_embeds"]; f2["position"] = pos; f2["valid_len"] = valid;
                    for (int k = 0; k < cache.Length; k++) f2[cacheIn[k]] = cache[k];
                    var outs = runner.Run(step, f2);
                    emb.Dispose();
                    f3["position"] = pos;
                    for (int k = 0; k < cache.Length; k++) { f3[cacheIn[k]] = cache[k]; f3[rows[k]] = outs[rows[k]]; }
                    var app = runner.Run(append, f3);
                    for (int k = 0; k < cache.Length; k++) { cache[k].Dispose(); cache[k] = app.Take(cacheOut[k]); }
                    app.Dispose();
                    uniforms.Floats[0] = 0.25f; uniforms.Floats[1] = 0.5f;
                    f4["logprobs"] = outs["logprobs"]; f4["uniforms"] = uniforms; f4["window"] = window; f4["mask_eos"] = mask;
                    var smp = runner.Run("llm_sample", f4);
                    outs.Dispose();
                    if (!(token is HostTensor) && !inFlight.Contains(token)) token.Dispose();
                    window.Dispose();
                    token = smp.Take("token");
                    window = smp.Take("window_next");
                    smp.Dispose();
                    runner.RequestRead(token);
                    inFlight.Enqueue(token);
                    position++;
                }
                Device.EndFrame();
                if (afterFrame != null) afterFrame(r.Frames + 1, position);
                if (++r.Frames >= maxFrames) throw new Exception("device-sampled decode does not stop");
            }
            r.Wasted = inFlight.Count;
            foreach (var t in inFlight) if (t != token) t.Dispose();
            token.Dispose();
            window.Dispose();
            foreach (var v in cache) v.Dispose();
            return r;
        }
    }
}
