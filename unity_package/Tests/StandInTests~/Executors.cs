// What the stand-in's models compute: synthetic outputs of the manifest's declared shapes, or the
// golden trace's recorded calls (through the ReplayRunner of Tests/Standalone~, which checks every
// input's bytes). Values a trace holds only by hash travel as tags on the stand-in's storage.
using System;
using System.Collections.Generic;
using SentisTts.Core;
using SentisTts.Tests;
using Unity.InferenceEngine;

namespace SentisStandIn
{
    public static class StandInModels
    {
        /// <summary>graph name -> stand-in Model with the manifest's I/O and the executor `exec(graph)`.</summary>
        public static Func<string, Model> Loader(BundleManifest m, Func<string, IExecutor> exec)
        {
            return graph =>
            {
                var g = m.Graph(graph);
                var ins = new List<KeyValuePair<string, DataType>>();
                foreach (var s in g.Inputs) ins.Add(new KeyValuePair<string, DataType>(s.Name, s.DType == DType.Int32 ? DataType.Int : DataType.Float));
                var outs = new List<string>();
                foreach (var s in g.Outputs) outs.Add(s.Name);
                return Device.MakeModel(ins, outs, exec(graph));
            };
        }
    }

    /// <summary>Deterministic outputs of the declared shapes (symbolic dims from the inputs);
    /// `logprobs` shifted to log-prob-like values; large outputs (KV cache) zero; the same values every call.
    /// CosyVoice3: the 200 special ids (from speech_token_size on) lowered, as a real LM scores them
    /// (uniform-ish scores would draw one in ~3 % of the steps: a stop, or a bistream error while text streams).</summary>
    public sealed class SyntheticExecutor : IExecutor
    {
        readonly GraphEntry g;
        readonly int lowerFrom = int.MaxValue;
        readonly Dictionary<string, Array> cache = new Dictionary<string, Array>();  // same outputs every call
        public string Graph { get { return g.Name; } }
        public SyntheticExecutor(BundleManifest m, string graph)
        {
            g = m.Graph(graph);
            if (ModelFamilies.Of(m) == ModelFamily.CosyVoice3) lowerFrom = m.Component("llm").Int("speech_token_size");
        }

        public Dictionary<string, Storage> Run(Dictionary<string, Storage> inputs)
        {
            var shapes = new Dictionary<string, int[]>();
            foreach (var kv in inputs) shapes[kv.Key] = kv.Value.Shape;
            var outs = new Dictionary<string, Storage>();
            int k = 0;
            foreach (var o in FakeRunner.OutputShapes(g, shapes))
            {
                int n = 1; foreach (var d in o.Value) n *= d;
                var spec = g.Outputs[k];
                var key = o.Key + "/" + n;
                Array data;
                if (!cache.TryGetValue(key, out data))
                {
                    if (spec.DType == DType.Int32) data = new int[n];
                    else if (n > 65536) data = new float[n];
                    else
                    {
                        var f = ReplayRunner.Synth(n, 7 + k);
                        if (o.Key == "logprobs") for (int i = 0; i < n; i++) f[i] -= i % o.Value[o.Value.Length - 1] >= lowerFrom ? 40f : 8f;
                        data = f;
                    }
                    cache[key] = data;
                }
                outs[o.Key] = Storage.Output(o.Value, data);
                k++;
            }
            return outs;
        }
    }

    /// <summary>Replays a golden trace: each graph call goes to the trace's ReplayRunner (which checks
    /// graph order, input names, shapes and bytes) and its recorded outputs come back.</summary>
    public sealed class ReplayExecutor : IExecutor
    {
        readonly ReplayRunner replay;
        readonly string graph;
        public string Graph { get { return graph; } }
        public ReplayExecutor(ReplayRunner replay, string graph) { this.replay = replay; this.graph = graph; }

        public Dictionary<string, Storage> Run(Dictionary<string, Storage> inputs)
        {
            var feeds = new Dictionary<string, GraphValue>();
            foreach (var kv in inputs)
            {
                var s = kv.Value;
                var rv = s.Tag as ReplayValue;
                if (rv != null) feeds[kv.Key] = rv;
                else if (s.Type == typeof(float)) feeds[kv.Key] = new HostTensor(s.Shape, Prefix(s.Floats, s.Shape));
                else feeds[kv.Key] = new HostTensor(s.Shape, Prefix(s.Ints, s.Shape));
            }
            var outs = new Dictionary<string, Storage>();
            using (var o = replay.Run(graph, feeds))
                foreach (var name in new List<string>(o.Names))
                {
                    var v = (ReplayValue)o[name];
                    int n = v.Count;
                    if (v.Floats != null) outs[name] = Storage.Output(v.Shape, v.Floats, v);
                    else if (v.Ints != null) outs[name] = Storage.Output(v.Shape, v.Ints, v);
                    else outs[name] = Storage.Output(v.Shape, v.DType == DType.Int32 ? (Array)new int[n] : new float[n], v, unknown: true);
                }
            return outs;
        }

        static T[] Prefix<T>(T[] a, int[] shape)
        {
            int n = 1; foreach (var d in shape) n *= d;
            if (n == a.Length) return a;
            var r = new T[n];
            Array.Copy(a, r, n);
            return r;
        }
    }
}
