// The stand-in's llm_sample (exporter/llm/sample_graph.py), for measuring LlmGenerator's
// DeviceSampling mode: the token sequence is fixed (100, 101, ... and EOS at call `eosAt`), the
// window is shifted like the real graph's. What the real graph draws is tested against runtime_ref's
// sampler in tests/unity/test_sample_graph.py.
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
}
