// IGraphRunner on Unity Inference Engine / Sentis 2.2+ (`com.unity.ai.inference`, namespace
// Unity.InferenceEngine). Behaviour pinned by the Sentis stand-in tests (Tests/SentisStandIn~,
// tests/unity/test_sentis_standin.py): live tensors back to the baseline after every utterance, no
// tensor allocation and no blocking readback per decode step.
// - Outputs are not copied: a returned value wraps the worker's own output tensor (PeekOutput).
//   The worker's storage recycles it at that worker's next Schedule, so before a worker is
//   scheduled again every value of its last run that is still alive is copied out
//   (Worker.CopyOutput into a pooled tensor of the same size) — copy-on-reschedule. A graph may
//   have several workers (`workersPerGraph`, e.g. 2 for the weightless KV-cache append graph):
//   the runner then alternates between them so values passed from one call to the next are never
//   copied.
// - Host inputs go into one persistent tensor per (worker, input), refilled in place with
//   Tensor<T>.Upload (reallocated only when a larger shape comes).
// - Zeros(): one shared read-only tensor per shape (graphs never write their inputs).
// - Read() blocks (voice creation only); RequestRead()/TryRead() are the non-blocking pair
//   (Tensor.ReadbackRequest / IsReadbackRequestDone, then DownloadToNativeArray: the finished
//   request's buffer, copied into the caller's array) the decode loop, flow and HiFT use.
// - No managed allocation per call in steady state: a worker's output set and value objects are
//   handed out again once the caller disposed them; inputs are bound with Dictionary's struct
//   enumerator.
// - After Dispose every call throws (a destroyed speaker cannot re-create workers).
using System;
using System.Collections.Generic;
using SentisTts.Core;
using Unity.Collections;
using Unity.InferenceEngine;

namespace SentisTts.Sentis
{
    /// <summary>A value living in a Sentis tensor: a worker's output (until its worker runs again),
    /// a runner-owned pooled tensor, or a shared read-only zeros tensor.</summary>
    public sealed class SentisValue : GraphValue
    {
        internal Tensor Tensor;
        internal SentisGraphRunner.Slot Peeked;   // worker whose output this is; null once owned
        internal string OutputName;
        internal bool Shared, ReadRequested;
        readonly SentisGraphRunner owner;

        internal SentisValue(Tensor t, SentisGraphRunner owner)
        {
            this.owner = owner;
            Rebind(t);
        }

        /// <summary>Point this (dead) value at `t`. The shape array is replaced only when the shape
        /// differs (it may be shared by host tensors made from it, so it is never written in place).</summary>
        internal void Rebind(Tensor t)
        {
            Tensor = t;
            Peeked = null; OutputName = null; Shared = false; ReadRequested = false;
            var ts = t.shape;
            bool same = Shape != null && Shape.Length == ts.rank;
            for (int i = 0; same && i < Shape.Length; i++) same = Shape[i] == ts[i];
            if (!same)
            {
                var shape = new int[ts.rank];
                for (int i = 0; i < shape.Length; i++) shape[i] = ts[i];
                Shape = shape;
            }
            DType = t.dataType == DataType.Int ? Core.DType.Int32 : Core.DType.Float32;
        }

        public bool IsLive { get { return Tensor != null; } }

        public override void Dispose()
        {
            if (Tensor == null) return;
            if (!Shared) owner.Release(this);
            Tensor = null;
        }
    }

    public sealed class SentisGraphRunner : IGraphRunner
    {
        internal sealed class Slot
        {
            public Worker Worker;
            public readonly Dictionary<string, Tensor> Inputs = new Dictionary<string, Tensor>();
            public readonly List<SentisValue> Live = new List<SentisValue>();
            public long LastUse;
            // the output set and values of the last run, handed out again once disposed/dead
            public GraphOutputs Outs;
            public SentisValue[] Values;
        }

        readonly Func<string, Model> loadModel;
        readonly Func<string, int> workersPerGraph;
        readonly BackendType backend;
        readonly Dictionary<string, List<Slot>> slots = new Dictionary<string, List<Slot>>();
        readonly Dictionary<string, Model> models = new Dictionary<string, Model>();
        readonly Dictionary<long, Stack<Tensor>> pool = new Dictionary<long, Stack<Tensor>>();
        readonly Dictionary<string, Tensor> zeros = new Dictionary<string, Tensor>();
        readonly HashSet<SentisValue> owned = new HashSet<SentisValue>();
        long uses;
        bool disposed;

        /// <summary>Tensors held for reuse (copy-on-reschedule targets), and runner-owned values in use.</summary>
        public int PooledTensors { get { int n = 0; foreach (var st in pool.Values) n += st.Count; return n; } }
        public int OwnedValues { get { return owned.Count; } }
        /// <summary>Values handed out and not disposed (worker outputs still referenced + owned copies).</summary>
        public int LiveValues { get { int n = owned.Count; foreach (var list in slots.Values) foreach (var sl in list) n += sl.Live.Count; return n; } }
        public int Readbacks { get; private set; }
        public int BlockingReadbacks { get; private set; }
        public int CopiesOnReschedule { get; private set; }
        public long ReadbackFloats { get; private set; }

        /// <param name="loadModel">graph name -> Model (e.g. ModelLoader.Load(modelAsset) or a .sentis path)</param>
        /// <param name="workersPerGraph">workers a graph may have (default 1); more only for graphs
        /// without large weights (each Worker holds its own copy of the constants on the device)</param>
        public SentisGraphRunner(Func<string, Model> loadModel, BackendType backend, Func<string, int> workersPerGraph = null)
        {
            this.loadModel = loadModel;
            this.backend = backend;
            this.workersPerGraph = workersPerGraph ?? (g => 1);
        }

        public BackendType Backend { get { return backend; } }

        void Alive() { if (disposed) throw new ObjectDisposedException("SentisGraphRunner", "the runner was disposed (its speaker was destroyed)"); }

        Model ModelFor(string graph)
        {
            Model m;
            if (models.TryGetValue(graph, out m)) return m;
            m = loadModel(graph);
            if (m == null) throw new SentisTtsException("graph '" + graph + "' has no model asset (re-import the bundle)");
            models[graph] = m;
            slots[graph] = new List<Slot>();
            return m;
        }

        /// <summary>A worker of `graph` with no live outputs if one exists or may be created, else
        /// the least recently used one (its live outputs are copied out first).</summary>
        Slot SlotFor(string graph, IDictionary<string, GraphValue> inputs)
        {
            var model = ModelFor(graph);
            var list = slots[graph];
            Slot best = null;
            foreach (var s in list)
                if (s.Live.Count == 0 && (best == null || s.LastUse < best.LastUse)) best = s;
            if (best == null && list.Count < Math.Max(1, workersPerGraph(graph)))
            {
                best = new Slot { Worker = new Worker(model, backend) };
                list.Add(best);
            }
            if (best == null)
                foreach (var s in list) if (best == null || s.LastUse < best.LastUse) best = s;
            return best;
        }

        static TensorShape ShapeOf(int[] s)
        {
            switch (s.Length)
            {
                case 1: return new TensorShape(s[0]);
                case 2: return new TensorShape(s[0], s[1]);
                case 3: return new TensorShape(s[0], s[1], s[2]);
                case 4: return new TensorShape(s[0], s[1], s[2], s[3]);
                default: return new TensorShape(s);
            }
        }

        static int Capacity(Tensor t, Dictionary<Tensor, int> caps) { int c; return caps.TryGetValue(t, out c) ? c : t.count; }
        readonly Dictionary<Tensor, int> capacity = new Dictionary<Tensor, int>();

        /// <summary>The persistent tensor of (slot, input), refilled in place.</summary>
        Tensor Fill(Slot slot, string name, HostTensor h)
        {
            Tensor t;
            var shape = ShapeOf(h.Shape);
            if (slot.Inputs.TryGetValue(name, out t))
            {
                bool sameType = (t.dataType == DataType.Int) == (h.DType == Core.DType.Int32);
                if (sameType && Capacity(t, capacity) >= h.Count)
                {
                    t.Reshape(shape);
                    if (h.DType == Core.DType.Float32) ((Tensor<float>)t).Upload(h.Floats);
                    else ((Tensor<int>)t).Upload(h.Ints);
                    return t;
                }
                capacity.Remove(t);
                t.Dispose();
            }
            t = h.DType == Core.DType.Float32 ? (Tensor)new Tensor<float>(shape, h.Floats) : new Tensor<int>(shape, h.Ints);
            capacity[t] = h.Count;
            slot.Inputs[name] = t;
            return t;
        }

        public GraphOutputs Run(string graph, IDictionary<string, GraphValue> inputs)
        {
            Alive();
            var slot = SlotFor(graph, inputs);
            // the worker's storage will recycle its last outputs: copy out those still in use
            for (int i = slot.Live.Count - 1; i >= 0; i--) Detach(slot.Live[i]);
            slot.Live.Clear();
            var w = slot.Worker;
            var dict = inputs as Dictionary<string, GraphValue>;
            if (dict != null) foreach (var kv in dict) Bind(slot, graph, kv.Key, kv.Value);  // struct enumerator: no allocation
            else foreach (var kv in inputs) Bind(slot, graph, kv.Key, kv.Value);
            w.Schedule();
            slot.LastUse = ++uses;
            // the output set and value objects of this worker's last run are reused when nothing holds
            // them any more (steady state: no managed allocation per call)
            var outputs = models[graph].outputs;
            if (slot.Values == null || slot.Values.Length != outputs.Count) slot.Values = new SentisValue[outputs.Count];
            if (slot.Outs == null || !slot.Outs.IsDisposed) slot.Outs = new GraphOutputs();
            else slot.Outs.Reset();
            var outs = slot.Outs;
            for (int k = 0; k < outputs.Count; k++)
            {
                var name = outputs[k].name;
                var t = w.PeekOutput(name);
                var v = slot.Values[k];
                if (v == null || v.Tensor != null) slot.Values[k] = v = new SentisValue(t, this);
                else v.Rebind(t);
                v.Peeked = slot; v.OutputName = name;
                slot.Live.Add(v);
                outs.Set(name, v);
            }
            return outs;
        }

        void Bind(Slot slot, string graph, string name, GraphValue value)
        {
            var h = value as HostTensor;
            if (h != null) { slot.Worker.SetInput(name, Fill(slot, name, h)); return; }
            var s = value as SentisValue;
            if (s == null || s.Tensor == null) throw new ArgumentException("input " + name + " of " + graph + " is not a host tensor or a live value of this runner");
            slot.Worker.SetInput(name, s.Tensor);
        }

        /// <summary>Copy a worker output still in use into a pooled tensor the runner owns.</summary>
        void Detach(SentisValue v)
        {
            var src = v.Tensor;
            Tensor copy = Take(src.dataType, src.count);
            v.Peeked.Worker.CopyOutput(v.OutputName, ref copy);
            CopiesOnReschedule++;
            v.Tensor = copy;
            v.Peeked = null;
            owned.Add(v);
            if (v.ReadRequested) copy.ReadbackRequest();
        }

        static long Key(DataType dt, int count) { return ((long)count << 1) | (dt == DataType.Int ? 1L : 0L); }

        Tensor Take(DataType dt, int count)
        {
            Stack<Tensor> s;
            if (pool.TryGetValue(Key(dt, count), out s) && s.Count > 0) return s.Pop();
            return null;
        }

        internal void Release(SentisValue v)
        {
            if (v.Peeked != null) { v.Peeked.Live.Remove(v); v.Peeked = null; return; }  // the worker keeps its output
            owned.Remove(v);
            if (disposed) { v.Tensor.Dispose(); return; }
            var t = v.Tensor;
            var k = Key(t.dataType, t.count);
            Stack<Tensor> s;
            if (!pool.TryGetValue(k, out s)) pool[k] = s = new Stack<Tensor>();
            s.Push(t);
        }

        public GraphValue Zeros(int[] shape, Core.DType dtype)
        {
            Alive();
            var key = DTypes.Name(dtype) + GraphValue.ShapeText(shape);
            Tensor t;
            if (!zeros.TryGetValue(key, out t))
            {
                var s = ShapeOf(shape);
                t = dtype == Core.DType.Float32 ? (Tensor)new Tensor<float>(s) : new Tensor<int>(s);
                zeros[key] = t;
            }
            return new SentisValue(t, this) { Shared = true };
        }

        static SentisValue Live(GraphValue value)
        {
            var s = value as SentisValue;
            if (s == null || s.Tensor == null) throw new ArgumentException("not a live value of this runner");
            return s;
        }

        public HostTensor Read(GraphValue value)
        {
            Alive();
            var h = value as HostTensor;
            if (h != null) return h;
            var s = Live(value);
            Readbacks++;
            if (!s.ReadRequested || !s.Tensor.IsReadbackRequestDone()) BlockingReadbacks++;
            ReadbackFloats += s.Count;
            s.ReadRequested = false;
            if (s.DType == Core.DType.Float32) return new HostTensor(s.Shape, ((Tensor<float>)s.Tensor).DownloadToArray());
            return new HostTensor(s.Shape, ((Tensor<int>)s.Tensor).DownloadToArray());
        }

        public void RequestRead(GraphValue value)
        {
            Alive();
            if (value is HostTensor) return;
            var s = Live(value);
            if (s.ReadRequested) return;
            s.ReadRequested = true;
            s.Tensor.ReadbackRequest();
        }

        public bool TryRead(GraphValue value, HostTensor into)
        {
            Alive();
            var h = value as HostTensor;
            if (h != null) { HostTensor.CopyData(h, into); return true; }
            var s = Live(value);
            if (!s.ReadRequested) RequestRead(s);
            if (!s.Tensor.IsReadbackRequestDone()) return false;
            Readbacks++;
            ReadbackFloats += s.Count;
            s.ReadRequested = false;
            // the finished readback's buffer (no managed allocation, unlike DownloadToArray), copied into the caller's array
            if (s.DType == Core.DType.Float32) NativeArray<float>.Copy(((Tensor<float>)s.Tensor).DownloadToNativeArray(), 0, into.Floats, 0, s.Count);
            else NativeArray<int>.Copy(((Tensor<int>)s.Tensor).DownloadToNativeArray(), 0, into.Ints, 0, s.Count);
            return true;
        }

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            foreach (var list in slots.Values)
                foreach (var s in list)
                {
                    foreach (var v in s.Live) { v.Peeked = null; v.Tensor = null; }  // values outliving the runner become dead
                    s.Live.Clear();
                    foreach (var t in s.Inputs.Values) t.Dispose();
                    s.Inputs.Clear();
                    s.Worker.Dispose();
                }
            slots.Clear();
            foreach (var v in owned) { v.Tensor.Dispose(); v.Tensor = null; }
            owned.Clear();
            foreach (var st in pool.Values) foreach (var t in st) t.Dispose();
            pool.Clear();
            foreach (var t in zeros.Values) t.Dispose();
            zeros.Clear();
            capacity.Clear();
            models.Clear();
        }
    }
}
