// A runner that answers every graph of the manifest with deterministic synthetic outputs of the
// declared shapes (symbolic dims taken from the inputs). Used to test the pipeline's schedule and
// value disposal without a trace.
using System;
using System.Collections.Generic;
using SentisTts.Core;
using SentisTts.Core.Audio;
using SentisTts.Core.Pipeline;

namespace SentisTts.Tests
{
    public sealed class FakeRunner : IGraphRunner
    {
        readonly BundleManifest m;
        public readonly List<ReplayValue> Made = new List<ReplayValue>();
        public readonly List<string> Calls = new List<string>();
        public int Leaked { get { int n = 0; foreach (var v in Made) if (!v.Disposed) n++; return n; } }

        public FakeRunner(BundleManifest m) { this.m = m; }

        /// <summary>Output name -> shape for `g` given its input shapes (symbolic dims taken from the inputs).</summary>
        public static List<KeyValuePair<string, int[]>> OutputShapes(GraphEntry g, IDictionary<string, int[]> inputShapes)
        {
            var dims = new Dictionary<string, int>();
            foreach (var spec in g.Inputs)
            {
                int[] s;
                if (!inputShapes.TryGetValue(spec.Name, out s)) throw new SentisTtsException(g.Name + ": missing input " + spec.Name);
                if (!spec.Accepts(s)) throw new SentisTtsException(g.Name + ": input " + spec.Name + " shape " + GraphValue.ShapeText(s) + " vs " + spec.ShapeText());
                for (int i = 0; i < spec.Shape.Length; i++) if (spec.Shape[i] < 0) dims[spec.DimNames[i]] = s[i];
            }
            var r = new List<KeyValuePair<string, int[]>>();
            foreach (var o in g.Outputs)
            {
                var shape = new int[o.Shape.Length];
                for (int i = 0; i < shape.Length; i++) shape[i] = o.Shape[i] >= 0 ? o.Shape[i] : dims[o.DimNames[i]];
                r.Add(new KeyValuePair<string, int[]>(o.Name, shape));
            }
            return r;
        }

        public GraphOutputs Run(string graph, IDictionary<string, GraphValue> inputs)
        {
            Calls.Add(graph);
            var g = m.Graph(graph);
            var shapes = new Dictionary<string, int[]>();
            foreach (var kv in inputs) shapes[kv.Key] = kv.Value.Shape;
            var outs = new GraphOutputs();
            int k = 0;
            foreach (var o in OutputShapes(g, shapes))
            {
                var v = new ReplayValue(o.Value, g.Outputs[k].DType, "");
                int n = v.Count;
                v.Floats = ReplayRunner.Synth(n, Calls.Count * 7 + k++);
                if (o.Key == "logprobs") for (int i = 0; i < n; i++) v.Floats[i] -= 8f;  // log-prob-like
                Made.Add(v);
                outs.Set(o.Key, v);
            }
            return outs;
        }

        public GraphValue Zeros(int[] shape, DType dtype)
        {
            var v = new ReplayValue(shape, dtype, "") { Floats = new float[HostTensor.Zeros(shape, dtype).Count] };
            Made.Add(v);
            return v;
        }

        public HostTensor Read(GraphValue value)
        {
            var h = value as HostTensor;
            if (h != null) return h;
            var r = (ReplayValue)value;
            if (r.Disposed) throw new SentisTtsException("read of a disposed value");
            return new HostTensor(r.Shape, (float[])r.Floats.Clone());
        }

        public void RequestRead(GraphValue value) { }

        public bool TryRead(GraphValue value, HostTensor into) { HostTensor.CopyData(Read(value), into); return true; }

        public void Dispose() { }
    }

    /// <summary>Flow stand-in: 2 mel frames per token after the prompt, values from the token ids;
    /// with finalize=false the last 3 tokens are look-ahead only (like flow.token2mel).</summary>
    public sealed class FakeFlow : IFlowStage
    {
        public int Calls;
        public readonly List<string> Seen = new List<string>();
        public Mel TokensToMel(IList<int> tokens, FlowPrompt prompt, bool streaming, bool finalize)
        {
            Calls++;
            Seen.Add(tokens.Count + (finalize ? "F" : "") + (streaming ? "S" : ""));
            int nEnc = prompt.Tokens.Length + tokens.Count - (finalize ? 0 : 3);
            int frames = 2 * nEnc - prompt.MelFrames;
            var d = new float[80 * frames];
            for (int c = 0; c < 80; c++) for (int t = 0; t < frames; t++) d[c * frames + t] = (tokens[Math.Min(tokens.Count - 1, t / 2)] % 97) / 97f - 0.5f;
            return new Mel(80, frames, d);
        }
    }
}
