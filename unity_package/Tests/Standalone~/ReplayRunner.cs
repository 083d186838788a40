// IGraphRunner that replays a golden trace (tests/golden, format sentis-tts-trace/1): every call
// Core makes is compared with the recorded one (graph name, input names, dtypes, shapes, sha256 of
// the bytes), and the recorded outputs are handed back (data where the trace stores it, hashes
// otherwise, or the synthetic outputs of `synthetic` traces / of output entries with a "synth"
// seed). An input entry with "noise_slice" {draw, start, count} (or {segments: [[draw, start,
// count], ...]}, a table grown over several draws) is checked by provenance instead of by hash: the
// test's noise source tags element i of draw k as the float 1 + k * stride + i, so the input must
// hold those elements in order followed by zeros.
using System;
using System.Collections.Generic;
using SentisTts.Core;

namespace SentisTts.Tests
{
    public sealed class ReplayValue : GraphValue
    {
        public string Sha;
        public float[] Floats;
        public int[] Ints;
        public bool Disposed;
        public ReplayValue(int[] shape, DType dtype, string sha) { Shape = shape; DType = dtype; Sha = sha; }
        public override void Dispose() { Disposed = true; }
    }

    public sealed class ReplayRunner : IGraphRunner
    {
        readonly List<object> calls;
        readonly bool synthetic;
        readonly int seedBase;
        readonly long noiseStride;
        public int Next { get; private set; }
        public readonly List<string> Failures = new List<string>();
        public int CallCount { get { return calls.Count; } }
        public int Reads, ZerosMade;
        public readonly List<ReplayValue> Made = new List<ReplayValue>();
        public int Leaked { get { int n = 0; foreach (var v in Made) if (!v.Disposed) n++; return n; } }

        public ReplayRunner(JsonObject trace)
        {
            calls = trace.Arr("calls");
            synthetic = trace.Str("outputs") == "synthetic";
            seedBase = synthetic ? trace.Int("synthetic_seed_base") : 0;
            var p = trace.Obj("params");
            noiseStride = p != null && p.ContainsKey("noise_tag_stride") ? p.Long("noise_tag_stride") : 0;
        }

        public static float[] Synth(int n, long seed)
        {
            var r = new float[n];
            for (long i = 0; i < n; i++)
            {
                long v = (i * 1103515245L + seed * 2654435761L + 12345L) % (1L << 24);
                r[i] = (float)v / 16777216f - 0.5f;
            }
            return r;
        }

        static string Sha(GraphValue v)
        {
            var h = v as HostTensor;
            if (h != null) return h.Sha256();
            var r = v as ReplayValue;
            if (r != null) return r.Sha;
            return "?";
        }

        void Fail(string s) { if (Failures.Count < 20) Failures.Add(s); }

        public GraphOutputs Run(string graph, IDictionary<string, GraphValue> inputs)
        {
            int k = Next++;
            var outs = new GraphOutputs();
            if (k >= calls.Count) { Fail("call " + k + " (" + graph + "): the trace has only " + calls.Count + " calls"); throw new InvalidOperationException(Failures[Failures.Count - 1]); }
            var c = (JsonObject)calls[k];
            if (c.Str("graph") != graph) Fail("call " + k + ": graph " + graph + ", trace has " + c.Str("graph"));
            var seen = new HashSet<string>();
            foreach (JsonObject e in c.Arr("inputs"))
            {
                var name = e.Str("name");
                seen.Add(name);
                GraphValue v;
                if (!inputs.TryGetValue(name, out v)) { Fail("call " + k + " (" + graph + "): input " + name + " missing"); continue; }
                var shape = Json.IntArray(e.Get("shape"));
                if (GraphValue.ShapeText(shape) != GraphValue.ShapeText(v.Shape))
                    Fail("call " + k + " (" + graph + "): input " + name + " shape " + GraphValue.ShapeText(v.Shape) + ", trace " + GraphValue.ShapeText(shape));
                var ns = e.Obj("noise_slice");
                if (DTypes.Name(v.DType) != e.Str("dtype")) Fail("call " + k + " (" + graph + "): input " + name + " dtype " + DTypes.Name(v.DType) + ", trace " + e.Str("dtype"));
                else if (ns != null)
                {
                    var msg = CheckNoise(v as HostTensor, ns);
                    if (msg != null) Fail("call " + k + " (" + graph + "): input " + name + ": " + msg);
                }
                else if (Sha(v) != e.Str("sha256")) Fail("call " + k + " (" + graph + "): input " + name + " bytes differ (sha256 " + Sha(v).Substring(0, Math.Min(12, Sha(v).Length)) + "…)");
            }
            foreach (var name in inputs.Keys) if (!seen.Contains(name)) Fail("call " + k + " (" + graph + "): unexpected input " + name);
            int j = 0;
            foreach (JsonObject e in c.Arr("outputs"))
            {
                var shape = Json.IntArray(e.Get("shape"));
                var dt = DTypes.Parse(e.Str("dtype"));
                var rv = new ReplayValue(shape, dt, e.Str("sha256"));
                var data = e.Str("data");
                if (e.Get("synth") != null)
                {
                    int n = 1; foreach (var d in shape) n *= d;
                    rv.Floats = Synth(n, e.Long("synth"));
                    var set = e.Arr("set");
                    if (set != null)
                        foreach (List<object> iv in set) rv.Floats[(int)((JsonNumber)iv[0]).AsLong()] = (float)((JsonNumber)iv[1]).AsDouble();
                }
                else if (synthetic)
                {
                    int n = 1; foreach (var d in shape) n *= d;
                    rv.Floats = Synth(n, seedBase + 3 * k + j);
                }
                else if (data != null)
                {
                    var bytes = Convert.FromBase64String(data);
                    if (dt == DType.Float32) { rv.Floats = new float[bytes.Length / 4]; Buffer.BlockCopy(bytes, 0, rv.Floats, 0, bytes.Length); }
                    else { rv.Ints = new int[bytes.Length / 4]; Buffer.BlockCopy(bytes, 0, rv.Ints, 0, bytes.Length); }
                }
                outs.Set(e.Str("name"), rv);
                Made.Add(rv);
                j++;
            }
            return outs;
        }

        string CheckNoise(HostTensor h, JsonObject ns)
        {
            if (h == null || h.Floats == null) return "noise is not a host float tensor";
            if (noiseStride <= 0) return "the trace has no noise_tag_stride";
            var segs = new List<long[]>();  // (draw, start, count): one slice, or a table grown over several draws
            if (ns.Get("segments") != null)
                foreach (List<object> sg in ns.Arr("segments"))
                    segs.Add(new[] { ((JsonNumber)sg[0]).AsLong(), ((JsonNumber)sg[1]).AsLong(), ((JsonNumber)sg[2]).AsLong() });
            else segs.Add(new[] { ns.Long("draw"), ns.Long("start"), ns.Long("count") });
            var x = h.Floats;
            long j = 0;
            foreach (var sg in segs)
            {
                long k = sg[0], start = sg[1], count = sg[2];
                if (j + count > x.Length) return "noise slice longer than the input";
                for (long i = 0; i < count; i++, j++)
                {
                    float want = (float)(1 + k * noiseStride + start + i);
                    if (x[j] == want) continue;
                    if (x[j] == 0f) return "noise element " + j + " is zero, trace wants draw " + k + " element " + (start + i);
                    long got = (long)x[j] - 1;
                    return "noise element " + j + " is draw " + (got / noiseStride) + " element " + (got % noiseStride) + ", trace wants draw " + k + " element " + (start + i);
                }
            }
            for (; j < x.Length; j++)
                if (x[j] != 0f)
                {
                    long got = (long)x[j] - 1;
                    return "noise element " + j + " is draw " + (got / noiseStride) + " element " + (got % noiseStride) + ", trace wants zero padding";
                }
            return null;
        }

        public GraphValue Zeros(int[] shape, DType dtype)
        {
            ZerosMade++;
            var h = HostTensor.Zeros(shape, dtype);
            var z = new ReplayValue(shape, dtype, h.Sha256());
            Made.Add(z);
            return z;
        }

        public HostTensor Read(GraphValue value)
        {
            Reads++;
            var h = value as HostTensor;
            if (h != null) return h;
            var r = (ReplayValue)value;
            if (r.Floats != null) return new HostTensor(r.Shape, (float[])r.Floats.Clone());
            if (r.Ints != null) return new HostTensor(r.Shape, (int[])r.Ints.Clone());
            var msg = "Core read back a value the trace did not read on the host (shape " + GraphValue.ShapeText(r.Shape) + ")";
            Fail(msg);
            throw new InvalidOperationException(msg);
        }

        public void RequestRead(GraphValue value) { }

        public bool TryRead(GraphValue value, HostTensor into) { HostTensor.CopyData(Read(value), into); return true; }

        public void Dispose() { }
    }
}
