// IGraphRunner on Unity Inference Engine / Sentis 2.2+ (`com.unity.ai.inference`, namespace
// Unity.InferenceEngine). One Worker per graph, created on first use.
// - Values Core passes back (KV cache, decode-step embeddings) stay on the backend: every output is
//   copied into a tensor we own with Worker.CopyOutput (a device-side copy, no download), and that
//   tensor is later bound with SetInput. Nothing is read back unless Core calls Read().
// - Read() is the only readback: the prefill embeddings once per utterance, each step's logprobs
//   (speech vocab floats) and HiFT audio.
// - Disposed output tensors go to a pool and are reused as CopyOutput targets of later calls of the
//   same size (no per-step allocation for the KV cache).
// - Host tensors Core hands in are uploaded into tensors owned here and disposed at the next Run
//   of the same worker (after its previous work was scheduled) or on Dispose.
// Verified here only as a compile check against stubs (tests/unity/stubs); see docs/unity.md.
using System;
using System.Collections.Generic;
using SentisTts.Core;
using Unity.InferenceEngine;

namespace SentisTts.Sentis
{
    /// <summary>A value living in a Sentis tensor owned by the runner's caller.</summary>
    public sealed class SentisValue : GraphValue
    {
        public Tensor Tensor { get; private set; }
        readonly SentisGraphRunner owner;

        public SentisValue(Tensor t, SentisGraphRunner owner = null)
        {
            this.owner = owner;
            Tensor = t;
            var shape = new int[t.shape.rank];
            for (int i = 0; i < shape.Length; i++) shape[i] = t.shape[i];
            Shape = shape;
            DType = t.dataType == DataType.Int ? Core.DType.Int32 : Core.DType.Float32;
        }

        public override void Dispose()
        {
            if (Tensor == null) return;
            if (owner != null) owner.Recycle(Tensor);
            else Tensor.Dispose();
            Tensor = null;
        }
    }

    public sealed class SentisGraphRunner : IGraphRunner
    {
        readonly Func<string, Model> loadModel;
        readonly BackendType backend;
        readonly Dictionary<string, Worker> workers = new Dictionary<string, Worker>();
        readonly Dictionary<string, Model> models = new Dictionary<string, Model>();
        readonly Dictionary<string, List<Tensor>> uploads = new Dictionary<string, List<Tensor>>();
        // Tensors of disposed values, reused as CopyOutput targets (KV-cache outputs have the same
        // shape every step, so decoding allocates nothing after the first steps). Reuse is safe:
        // a recycled tensor was an input of an earlier, already scheduled call, and the backend
        // executes work in scheduling order.
        readonly Dictionary<long, Stack<Tensor>> pool = new Dictionary<long, Stack<Tensor>>();
        public int PoolReuses { get; private set; }
        public int Readbacks { get; private set; }
        public long ReadbackFloats { get; private set; }

        /// <param name="loadModel">graph name -> Model (e.g. ModelLoader.Load(modelAsset) or a .sentis path)</param>
        public SentisGraphRunner(Func<string, Model> loadModel, BackendType backend)
        {
            this.loadModel = loadModel;
            this.backend = backend;
        }

        public BackendType Backend { get { return backend; } }

        Worker WorkerFor(string graph)
        {
            Worker w;
            if (workers.TryGetValue(graph, out w)) return w;
            var m = loadModel(graph);
            if (m == null) throw new SentisTtsException("graph '" + graph + "' has no model asset (re-import the bundle)");
            models[graph] = m;
            w = new Worker(m, backend);
            workers[graph] = w;
            uploads[graph] = new List<Tensor>();
            return w;
        }

        static Tensor Upload(HostTensor h)
        {
            var shape = new TensorShape(h.Shape);
            if (h.DType == Core.DType.Float32) return new Tensor<float>(shape, h.Floats);
            return new Tensor<int>(shape, h.Ints);
        }

        public GraphOutputs Run(string graph, IDictionary<string, GraphValue> inputs)
        {
            var w = WorkerFor(graph);
            var pending = uploads[graph];
            foreach (var t in pending) t.Dispose();
            pending.Clear();
            foreach (var kv in inputs)
            {
                Tensor t;
                var h = kv.Value as HostTensor;
                if (h != null) { t = Upload(h); pending.Add(t); }
                else
                {
                    var s = kv.Value as SentisValue;
                    if (s == null || s.Tensor == null) throw new ArgumentException("input " + kv.Key + " of " + graph + " is not a host tensor or a live value of this runner");
                    t = s.Tensor;
                }
                w.SetInput(kv.Key, t);
            }
            w.Schedule();
            var outs = new GraphOutputs();
            var model = models[graph];
            foreach (var o in model.outputs)
            {
                var peek = w.PeekOutput(o.name);
                Tensor copy = Take(peek.dataType, peek.shape.length);
                w.CopyOutput(o.name, ref copy);  // reshapes a pooled tensor of the same size
                outs.Set(o.name, new SentisValue(copy, this));
            }
            return outs;
        }

        static long Key(DataType dt, int count) { return ((long)count << 1) | (dt == DataType.Int ? 1L : 0L); }

        Tensor Take(DataType dt, int count)
        {
            Stack<Tensor> s;
            if (pool.TryGetValue(Key(dt, count), out s) && s.Count > 0) { PoolReuses++; return s.Pop(); }
            return null;
        }

        internal void Recycle(Tensor t)
        {
            var k = Key(t.dataType, t.shape.length);
            Stack<Tensor> s;
            if (!pool.TryGetValue(k, out s)) pool[k] = s = new Stack<Tensor>();
            s.Push(t);
        }

        public GraphValue Zeros(int[] shape, Core.DType dtype)
        {
            var s = new TensorShape(shape);
            Tensor t = dtype == Core.DType.Float32 ? (Tensor)new Tensor<float>(s) : new Tensor<int>(s);
            return new SentisValue(t, this);
        }

        public HostTensor Read(GraphValue value)
        {
            var h = value as HostTensor;
            if (h != null) return h;
            var s = (SentisValue)value;
            Readbacks++;
            ReadbackFloats += s.Count;
            if (s.DType == Core.DType.Float32) return new HostTensor(s.Shape, ((Tensor<float>)s.Tensor).DownloadToArray());
            return new HostTensor(s.Shape, ((Tensor<int>)s.Tensor).DownloadToArray());
        }

        public void Dispose()
        {
            foreach (var l in uploads.Values) foreach (var t in l) t.Dispose();
            uploads.Clear();
            foreach (var st in pool.Values) foreach (var t in st) t.Dispose();
            pool.Clear();
            foreach (var w in workers.Values) w.Dispose();
            workers.Clear();
            models.Clear();
        }
    }
}
