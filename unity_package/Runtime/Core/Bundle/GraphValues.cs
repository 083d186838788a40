// The graph-runner interface the Core orchestration talks to, and host tensors.
//
// Core never touches a backend: it hands the runner host tensors it built (ids, positions, chunks of
// embeddings, mel, noise) and passes values the runner returned straight back into later calls
// (KV cache, decode-step embeddings), so a Sentis runner keeps those on the GPU. Core reads back
// only what it must (`IGraphRunner.Read`): embeddings once per utterance for the prefill, the
// log-probs it samples from, and audio.
using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;

namespace SentisTts.Core
{
    public enum DType { Float32, Int32 }

    public static class DTypes
    {
        public static DType Parse(string s)
        {
            switch (s)
            {
                case "float32": case "float16": return DType.Float32;  // fp16 I/O arrives as float in Sentis
                case "int32": case "int64": return DType.Int32;        // int64 I/O arrives as int in Sentis
                default: throw new SentisTtsException("unsupported tensor dtype '" + s + "' in manifest.json");
            }
        }

        public static string Name(DType d) { return d == DType.Float32 ? "float32" : "int32"; }
    }

    /// <summary>A value passed to or returned by a graph: host data or a runner-owned handle.</summary>
    public abstract class GraphValue : IDisposable
    {
        public int[] Shape { get; protected set; }
        public DType DType { get; protected set; }
        public int Count { get { int n = 1; foreach (var d in Shape) n *= d; return n; } }
        public virtual void Dispose() { }
        public static string ShapeText(int[] s) { return "[" + string.Join(", ", Array.ConvertAll(s, x => x.ToString())) + "]"; }
    }

    /// <summary>Host (CPU) tensor, row-major. Exactly one of Floats/Ints is set.</summary>
    public sealed class HostTensor : GraphValue
    {
        public readonly float[] Floats;
        public readonly int[] Ints;

        public HostTensor(int[] shape, float[] data)
        {
            Shape = shape; DType = DType.Float32; Floats = data;
            if (data.Length != Count) throw new ArgumentException("data length " + data.Length + " != shape " + ShapeText(shape));
        }

        public HostTensor(int[] shape, int[] data)
        {
            Shape = shape; DType = DType.Int32; Ints = data;
            if (data.Length != Count) throw new ArgumentException("data length " + data.Length + " != shape " + ShapeText(shape));
        }

        public static HostTensor Zeros(int[] shape, DType dtype)
        {
            int n = 1; foreach (var d in shape) n *= d;
            return dtype == DType.Float32 ? new HostTensor(shape, new float[n]) : new HostTensor(shape, new int[n]);
        }

        public static HostTensor Scalar1(int v) { return new HostTensor(new[] { 1 }, new[] { v }); }

        /// <summary>Copy src's elements into dst (same dtype and element count).</summary>
        public static void CopyData(HostTensor src, HostTensor dst)
        {
            if (src.DType != dst.DType || src.Count != dst.Count)
                throw new ArgumentException("copy of " + DTypes.Name(src.DType) + ShapeText(src.Shape) + " into " + DTypes.Name(dst.DType) + ShapeText(dst.Shape));
            if (src.Floats != null) Array.Copy(src.Floats, dst.Floats, src.Count);
            else Array.Copy(src.Ints, dst.Ints, src.Count);
        }

        /// <summary>Little-endian bytes (what the graph receives).</summary>
        public byte[] ToBytes()
        {
            var b = new byte[Count * 4];
            if (Floats != null) Buffer.BlockCopy(Floats, 0, b, 0, b.Length);
            else Buffer.BlockCopy(Ints, 0, b, 0, b.Length);
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < b.Length; i += 4) { Array.Reverse(b, i, 4); }
            return b;
        }

        public string Sha256() { return Hashing.Sha256Hex(ToBytes()); }
    }

    public static class Hashing
    {
        public static string Sha256Hex(byte[] bytes)
        {
            using (var h = SHA256.Create())
            {
                var d = h.ComputeHash(bytes);
                var sb = new StringBuilder(64);
                foreach (var x in d) sb.Append(x.ToString("x2"));
                return sb.ToString();
            }
        }

        public static string Sha256Hex(System.IO.Stream s)
        {
            using (var h = SHA256.Create())
            {
                var d = h.ComputeHash(s);
                var sb = new StringBuilder(64);
                foreach (var x in d) sb.Append(x.ToString("x2"));
                return sb.ToString();
            }
        }
    }

    /// <summary>Named outputs of one graph call. Disposing it disposes the values not taken. A runner
    /// may hand the same object back for a later call once it was disposed and all its values are
    /// dead (Reset), so a disposed GraphOutputs must not be used again.</summary>
    public sealed class GraphOutputs : IDisposable
    {
        readonly Dictionary<string, GraphValue> values = new Dictionary<string, GraphValue>();
        public void Set(string name, GraphValue v) { values[name] = v; }
        public GraphValue this[string name]
        {
            get
            {
                GraphValue v;
                if (!values.TryGetValue(name, out v)) throw new SentisTtsException("graph output '" + name + "' was not produced");
                return v;
            }
        }

        /// <summary>Take ownership of an output (it will not be disposed with the others).</summary>
        public GraphValue Take(string name) { var v = this[name]; values.Remove(name); return v; }
        public IEnumerable<string> Names { get { return values.Keys; } }
        public bool IsDisposed { get; private set; }

        /// <summary>For runners that recycle output sets: empty and usable again.</summary>
        public void Reset() { values.Clear(); IsDisposed = false; }

        public void Dispose()
        {
            if (IsDisposed) return;
            IsDisposed = true;
            foreach (var v in values.Values) v.Dispose();  // Dictionary's struct enumerator: no allocation
            values.Clear();
        }
    }

    /// <summary>What Core needs from a backend. Implementations: the Sentis runner (Runtime/Sentis),
    /// the replay runner of the golden-trace tests.</summary>
    public interface IGraphRunner : IDisposable
    {
        /// <summary>Run graph `graph` on `inputs` (name -> value, host tensors or values this runner returned).
        /// The caller owns the returned outputs and the inputs it created.</summary>
        GraphOutputs Run(string graph, IDictionary<string, GraphValue> inputs);

        /// <summary>A zero-filled tensor that lives where graph values live (e.g. an empty KV cache).</summary>
        GraphValue Zeros(int[] shape, DType dtype);

        /// <summary>Copy a value to the host, waiting for it (the once-per-chunk paths).</summary>
        HostTensor Read(GraphValue value);

        /// <summary>Start copying a value to the host without waiting (a GPU readback request).</summary>
        void RequestRead(GraphValue value);

        /// <summary>If the value's readback finished, copy it into `into` (same element count) and
        /// return true; otherwise return false at once (never waits). Requests the readback if
        /// RequestRead was not called.</summary>
        bool TryRead(GraphValue value, HostTensor into);
    }
}
