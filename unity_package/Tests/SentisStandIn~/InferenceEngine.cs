// Sentis stand-in: the subset of the real Unity.InferenceEngine (com.unity.ai.inference 2.2-2.4)
// API that the package calls, with the real semantics that matter for leaks and stalls, written
// from the real source (Runtime/Core/Tensor.cs, TensorGeneric.cs, Backends/Worker.cs,
// Backends/ModelStorage.cs, Backends/GPUCompute/ComputeTensorData.cs) — our own code, no copy:
//  - a tensor made from host data lives on the CPU; a GPUCompute worker pins every CPU input to
//    the device at Schedule (a device allocation + upload; the CPU copy is dropped);
//  - Schedule = one command-buffer submission; outputs live in the worker's storage and are
//    recycled at that worker's next Schedule (a peeked output read after that is an error here);
//  - CopyOutput = a device copy + one submission; a null target allocates;
//  - Tensor<T>.Upload refills the tensor where it lives (no allocation);
//  - DownloadToArray blocks unless a ReadbackRequest finished (IsReadbackRequestDone); readbacks
//    finish `Device.ReadbackLatencyFrames` frames after the request (Device.EndFrame);
//  - work on the CPU backend is pending until the frame ends (Burst jobs), so reading it earlier
//    waits too.
// Every public name/signature in this namespace exists in the real API (tests/unity checks it against
// shared/reference/sentis_api); the counters and hooks live in namespace SentisStandIn.
using System;
using System.Collections.Generic;
using SentisStandIn;

namespace Unity.InferenceEngine
{
    public enum BackendType { GPUCompute, GPUPixel, CPU }
    public enum DataType { Float, Int, Short, Byte, Custom }

    public struct TensorShape  // fixed fields like the real struct: making one allocates nothing
    {
        readonly int r, d0, d1, d2, d3, d4, d5, d6, d7;
        public TensorShape(int d0) : this(1, d0, 0, 0, 0) { }
        public TensorShape(int d0, int d1) : this(2, d0, d1, 0, 0) { }
        public TensorShape(int d0, int d1, int d2) : this(3, d0, d1, d2, 0) { }
        public TensorShape(int d0, int d1, int d2, int d3) : this(4, d0, d1, d2, d3) { }
        TensorShape(int rank, int a, int b, int c, int d) { r = rank; d0 = a; d1 = b; d2 = c; d3 = d; d4 = d5 = d6 = d7 = 0; }
        public TensorShape(ReadOnlySpan<int> shape)
        {
            if (shape.Length > 8) throw new ArgumentException("TensorShape: rank > 8");
            r = shape.Length;
            d0 = r > 0 ? shape[0] : 0; d1 = r > 1 ? shape[1] : 0; d2 = r > 2 ? shape[2] : 0; d3 = r > 3 ? shape[3] : 0;
            d4 = r > 4 ? shape[4] : 0; d5 = r > 5 ? shape[5] : 0; d6 = r > 6 ? shape[6] : 0; d7 = r > 7 ? shape[7] : 0;
        }
        public int rank { get { return r; } }
        public int length { get { int n = 1; for (int i = 0; i < r; i++) n *= this[i]; return n; } }
        public int this[int axis]
        {
            get
            {
                int a = axis < 0 ? axis + r : axis;
                if (a < 0 || a >= r) throw new IndexOutOfRangeException("TensorShape axis " + axis + " of rank " + r);
                switch (a) { case 0: return d0; case 1: return d1; case 2: return d2; case 3: return d3; case 4: return d4; case 5: return d5; case 6: return d6; default: return d7; }
            }
        }
        public int[] ToArray() { var x = new int[r]; for (int i = 0; i < r; i++) x[i] = this[i]; return x; }
        public static bool operator ==(TensorShape a, TensorShape b)
        {
            if (a.rank != b.rank) return false;
            for (int i = 0; i < a.rank; i++) if (a[i] != b[i]) return false;
            return true;
        }
        public static bool operator !=(TensorShape a, TensorShape b) { return !(a == b); }
        public override bool Equals(object obj) { return obj is TensorShape && this == (TensorShape)obj; }
        public override int GetHashCode() { int h = rank; for (int i = 0; i < rank; i++) h = h * 31 + this[i]; return h; }
        public override string ToString() { return "(" + string.Join(", ", Array.ConvertAll(ToArray(), x => x.ToString())) + ")"; }
    }

    public abstract class Tensor : IDisposable
    {
        internal TensorShape m_Shape;
        internal DataType m_DataType;
        internal Storage storage;       // null after Dispose
        internal bool disposed;
        internal Worker owner;          // worker whose storage holds this output (null: caller-owned)
        internal int ownerGeneration;   // owner's schedule count when this was written

        public DataType dataType { get { return m_DataType; } }
        public int count { get { return m_Shape.length; } }
        public TensorShape shape { get { return m_Shape; } }
        public BackendType backendType
        {
            get { Live("backendType"); return storage.OnDevice ? BackendType.GPUCompute : BackendType.CPU; }
        }

        internal void Live(string what)
        {
            if (disposed || storage == null) throw new ObjectDisposedException("Tensor", what + " on a disposed tensor");
            if (owner != null && owner.generation != ownerGeneration)
                throw new InvalidOperationException(what + " on a worker output after its worker was scheduled again (the storage recycled it): CopyOutput it first");
        }

        public abstract void Reshape(TensorShape shape);

        public bool IsReadbackRequestDone()
        {
            Device.Enter();
            try
            {
                if (storage == null) return false;
                return storage.ReadbackDone();
            }
            finally { Device.Exit(); }
        }

        public void ReadbackRequest()
        {
            Device.Enter();
            try
            {
                Live("ReadbackRequest");
                storage.Request();
            }
            finally { Device.Exit(); }
        }

        public void CompleteAllPendingOperations()
        {
            Live("CompleteAllPendingOperations");
            storage.WaitIfPending();
        }

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            if (owner != null) { owner.Forget(this); owner = null; }
            if (storage != null) storage.Free();
            storage = null;
            Device.C.LiveTensors--;
        }

        public override string ToString() { return m_DataType + m_Shape.ToString(); }
    }

    public class Tensor<T> : Tensor where T : struct  // `unmanaged` in Unity; mcs lacks that constraint
    {
        internal Tensor(TensorShape shape, Storage s)
        {
            m_Shape = shape; m_DataType = Storage.TypeOf(typeof(T)); storage = s;
            Device.C.LiveTensors++; Device.C.TensorAllocations++;
        }

        public Tensor(TensorShape shape, T[] srcData, int dataStartIndex = 0)
            : this(shape, Storage.Host(typeof(T), shape.length))
        {
            if (srcData.Length - dataStartIndex < shape.length) throw new ArgumentException("RangeError: array length " + srcData.Length + " is too small for shape " + shape);
            Array.Copy(srcData, dataStartIndex, storage.Array, 0, shape.length);
        }

        public Tensor(TensorShape shape, bool clearOnInit = true) : this(shape, Storage.Host(typeof(T), shape.length)) { }

        public override void Reshape(TensorShape shape)
        {
            Device.Enter();
            try
            {
                Live("Reshape");
                if (shape.length > storage.Capacity)
                    throw new InvalidOperationException("Tensor.Reshape: " + shape.length + " elements do not fit the " + storage.Capacity + " allocated");
                m_Shape = shape;
            }
            finally { Device.Exit(); }
        }

        public void Upload(T[] srcData)
        {
            Device.Enter();
            try
            {
                Live("Upload");
                if (srcData.Length > storage.Capacity) throw new ArgumentException("Upload of " + srcData.Length + " elements into a tensor of capacity " + storage.Capacity);
                storage.WriteFromHost((Array)srcData, srcData.Length);
            }
            finally { Device.Exit(); }
        }

        public T[] DownloadToArray()
        {
            Live("DownloadToArray");
            var r = new T[count];  // a managed allocation of the caller's (not counted as the stand-in's own)
            storage.ReadToHost(r, count);
            return r;
        }

        /// <summary>After a finished ReadbackRequest the real GPU tensor returns the readback buffer
        /// (AsyncGPUReadbackRequest.GetData: no copy, no managed allocation); otherwise it blocks.</summary>
        public Unity.Collections.NativeArray<T> DownloadToNativeArray()
        {
            Device.Enter();
            try
            {
                Live("DownloadToNativeArray");
                storage.ReadToHost(null, count);
                return new Unity.Collections.NativeArray<T>((T[])storage.Array, count);
            }
            finally { Device.Exit(); }
        }
    }

    public class Model
    {
        public struct Input { public string name; public int index; public DataType dataType; }
        public struct Output { public string name; public int index; }
        public List<Input> inputs = new List<Input>();
        public List<Output> outputs = new List<Output>();
    }

    public class Worker : IDisposable
    {
        readonly Model model;
        readonly BackendType backend;
        readonly Tensor[] bound;
        readonly Dictionary<string, int> inputIndex = new Dictionary<string, int>();
        readonly Dictionary<string, int> outputIndex = new Dictionary<string, int>();
        readonly Tensor[] outputs;
        internal int generation;
        bool disposed;

        public Worker(Model model, BackendType backendType)
        {
            this.model = model;
            backend = backendType;
            bound = new Tensor[model.inputs.Count];
            outputs = new Tensor[model.outputs.Count];
            for (int i = 0; i < model.inputs.Count; i++) inputIndex[model.inputs[i].name] = i;
            for (int i = 0; i < model.outputs.Count; i++) outputIndex[model.outputs[i].name] = i;
            Device.C.LiveWorkers++;
        }

        public BackendType backendType { get { return backend; } }
        bool OnGpu { get { return backend != BackendType.CPU; } }

        public void SetInput(int index, Tensor input)
        {
            Device.Enter();
            try
            {
                Alive();
                if (index >= bound.Length) throw new ArgumentException("Cannot set input tensor at index " + index + " as model only contains " + bound.Length + " inputs");
                if (model.inputs[index].dataType != input.dataType)
                    throw new ArgumentException("Cannot set input tensor " + index + " as data types do not match, expected " + model.inputs[index].dataType + " received " + input.dataType);
                bound[index] = input;
            }
            finally { Device.Exit(); }
        }

        public void SetInput(string name, Tensor input)
        {
            int i;
            if (!inputIndex.TryGetValue(name, out i)) throw new ArgumentException("Cannot set input tensor " + name + " as model does not contain an input with that name");
            SetInput(i, input);
        }

        public void Schedule()
        {
            Device.Enter();
            try
            {
                Alive();
                var exec = Device.ExecutorOf(model);
                var ins = new Dictionary<string, Storage>();
                for (int i = 0; i < bound.Length; i++)
                {
                    var t = bound[i];
                    if (t == null) throw new InvalidOperationException("Global input is missing: " + model.inputs[i].name);
                    t.Live("Schedule input " + model.inputs[i].name);
                    if (OnGpu) t.storage.Pin(); else t.storage.Unpin();
                    t.storage.Shape = t.shape.ToArray();
                    ins[model.inputs[i].name] = t.storage;
                }
                // DisposeOnExecute: last run's outputs go back to the storage's pool and are rewritten now
                generation++;
                var shapes = exec.Run(ins);
                for (int i = 0; i < outputs.Length; i++)
                {
                    var name = model.outputs[i].name;
                    Storage produced;
                    if (!shapes.TryGetValue(name, out produced)) throw new InvalidOperationException("stand-in executor did not produce output " + name);
                    var old = outputs[i];
                    Tensor t;
                    if (old != null && !old.disposed && old.storage.Capacity >= produced.Capacity && old.storage.Type == produced.Type)
                    {
                        t = old;  // reused from the worker's pool: no allocation
                        t.storage.OverwriteWith(produced, OnGpu);
                    }
                    else
                    {
                        if (old != null && !old.disposed) { old.owner = null; old.Dispose(); }
                        t = produced.Type == typeof(float) ? (Tensor)new Tensor<float>(new TensorShape(produced.Shape), Storage.Fresh(produced, OnGpu))
                                                           : new Tensor<int>(new TensorShape(produced.Shape), Storage.Fresh(produced, OnGpu));
                        t.owner = this;
                    }
                    t.m_Shape = new TensorShape(produced.Shape);
                    t.ownerGeneration = generation;
                    outputs[i] = t;
                }
                Device.C.Schedules++;
                int seen;
                Device.SchedulesOf.TryGetValue(exec.Graph, out seen);
                Device.SchedulesOf[exec.Graph] = seen + 1;
                Device.Clock += Device.CostOf(exec.Graph);
                if (OnGpu) Device.C.Submissions++;
            }
            finally { Device.Exit(); }
        }

        public Tensor PeekOutput(string name)
        {
            Device.Enter();
            try
            {
                Alive();
                int i;
                if (!outputIndex.TryGetValue(name, out i)) throw new ArgumentException("Cannot peek output tensor " + name + " as model does not contain an output with that name");
                if (outputs[i] == null) throw new InvalidOperationException("PeekOutput before Schedule");
                return outputs[i];
            }
            finally { Device.Exit(); }
        }

        public void CopyOutput(string name, ref Tensor tensor)
        {
            Device.Enter();
            try
            {
                var src = PeekOutput(name);
                if (tensor == null)
                {
                    tensor = src.dataType == DataType.Float ? (Tensor)new Tensor<float>(src.shape, Storage.Empty(typeof(float), src.count))
                                                            : new Tensor<int>(src.shape, Storage.Empty(typeof(int), src.count));
                }
                else
                {
                    if (tensor.dataType != src.dataType) throw new ArgumentException("Cannot copy to tensor as data types do not match, expected " + src.dataType + " received " + tensor.dataType);
                    tensor.Reshape(src.shape);
                }
                if (OnGpu) tensor.storage.Pin();
                tensor.storage.CopyFrom(src.storage, src.count);
                Device.C.CopyOutputs++;
                Device.C.DeviceBytesCopied += 4L * src.count;
                if (OnGpu) Device.C.Submissions++;
            }
            finally { Device.Exit(); }
        }

        internal void Forget(Tensor t) { for (int i = 0; i < outputs.Length; i++) if (outputs[i] == t) outputs[i] = null; }

        void Alive() { if (disposed) throw new ObjectDisposedException("Worker"); }

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            for (int i = 0; i < outputs.Length; i++)
                if (outputs[i] != null) { var t = outputs[i]; t.owner = null; t.Dispose(); }
            Device.C.LiveWorkers--;
        }
    }
}
