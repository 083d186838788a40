// The stand-in's device model: tensor storage (host or device residency, pending work, readback
// requests), the counters CI asserts on, the frame clock, and the hook that gives a stand-in Model
// its computation (an executor: the golden-trace replay or synthetic outputs).
using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using Unity.InferenceEngine;

namespace SentisStandIn
{
    public sealed class Counters
    {
        public long LiveTensors, LiveWorkers, TensorAllocations, DeviceAllocations, LiveDeviceBytes, HostAllocations;
        public long Schedules, Submissions, CopyOutputs, DeviceBytesCopied, GraphBytesWritten;
        public long BytesUploaded, BytesDownloaded, AsyncReadbacks, BlockingReadbacks;
        /// <summary>Managed bytes the stand-in itself allocated inside its API calls (its executors, its
        /// bookkeeping): subtracted from the thread's allocated bytes to get the package's.</summary>
        public long StandInManagedBytes;

        public Counters Clone() { return (Counters)MemberwiseClone(); }

        public Counters Minus(Counters b)
        {
            var d = Clone();
            foreach (var f in typeof(Counters).GetFields()) f.SetValue(d, (long)f.GetValue(this) - (long)f.GetValue(b));
            return d;
        }

        public override string ToString()
        {
            var parts = new List<string>();
            foreach (var f in typeof(Counters).GetFields()) parts.Add(f.Name + "=" + f.GetValue(this));
            return string.Join(" ", parts.ToArray());
        }
    }

    /// <summary>What a stand-in Model computes: named input storages -> named output storages
    /// (made with Storage.Output).</summary>
    public interface IExecutor
    {
        string Graph { get; }
        Dictionary<string, Storage> Run(Dictionary<string, Storage> inputs);
    }

    public static class Device
    {
        public static Counters C = new Counters();
        public static int Frame;
        /// <summary>Frames between ReadbackRequest and IsReadbackRequestDone (AsyncGPUReadback: 1-3).</summary>
        public static int ReadbackLatencyFrames = 1;
        /// <summary>Virtual main-thread seconds; Schedule adds GraphCost(graph).</summary>
        public static double Clock;
        public static Func<string, double> GraphCost;
        /// <summary>Schedules per graph name.</summary>
        public static Dictionary<string, int> SchedulesOf = new Dictionary<string, int>();

        static readonly ConditionalWeakTable<Model, IExecutor> executors = new ConditionalWeakTable<Model, IExecutor>();

        static int depth;
        static long enterBytes;

        /// <summary>Around the stand-in's own work in an API call (nested calls count once).</summary>
        internal static void Enter() { if (depth++ == 0) enterBytes = GC.GetAllocatedBytesForCurrentThread(); }
        internal static void Exit() { if (--depth == 0) C.StandInManagedBytes += GC.GetAllocatedBytesForCurrentThread() - enterBytes; }

        /// <summary>Managed bytes this thread allocated outside the stand-in's own API work.</summary>
        public static long CallerManagedBytes() { return GC.GetAllocatedBytesForCurrentThread() - C.StandInManagedBytes; }

        public static void Reset() { C = new Counters(); Frame = 0; Clock = 0; ReadbackLatencyFrames = 1; GraphCost = null; SchedulesOf = new Dictionary<string, int>(); }
        public static void EndFrame() { Frame++; }
        internal static double CostOf(string graph) { return GraphCost == null ? 0 : GraphCost(graph); }

        public static Model MakeModel(IList<KeyValuePair<string, DataType>> inputs, IList<string> outputs, IExecutor executor)
        {
            var m = new Model();
            for (int i = 0; i < inputs.Count; i++) m.inputs.Add(new Model.Input { name = inputs[i].Key, index = i, dataType = inputs[i].Value });
            for (int i = 0; i < outputs.Count; i++) m.outputs.Add(new Model.Output { name = outputs[i], index = inputs.Count + i });
            executors.Add(m, executor);
            return m;
        }

        internal static IExecutor ExecutorOf(Model m)
        {
            IExecutor e;
            if (!executors.TryGetValue(m, out e)) throw new InvalidOperationException("stand-in model without executor");
            return e;
        }
    }

    /// <summary>A tensor's data. `Tag` carries provenance the executor set (e.g. a trace's sha256 of
    /// values the trace holds only by hash); `Unknown` marks bytes the stand-in does not have.</summary>
    public sealed class Storage
    {
        public readonly Type Type;
        public readonly Array Array;
        public int Capacity { get { return Array.Length; } }
        public int[] Shape;
        public object Tag;
        public bool Unknown;
        internal bool OnDevice;
        int requestFrame = -1;
        int pendingFrame = -1;  // CPU backend: jobs of this frame not complete yet

        Storage(Type t, int n) { Type = t; Array = System.Array.CreateInstance(t, n); }

        public float[] Floats { get { return Array as float[]; } }
        public int[] Ints { get { return Array as int[]; } }

        internal static DataType TypeOf(Type t)
        {
            if (t == typeof(float)) return DataType.Float;
            if (t == typeof(int)) return DataType.Int;
            throw new NotSupportedException("stand-in tensors are float or int");
        }

        internal static Storage Host(Type t, int n) { Device.C.HostAllocations++; return new Storage(t, n); }
        internal static Storage Empty(Type t, int n) { return Host(t, n); }

        /// <summary>An executor's output.</summary>
        public static Storage Output(int[] shape, Array data, object tag = null, bool unknown = false)
        {
            var s = new Storage(data.GetType().GetElementType(), data.Length) { Shape = shape, Tag = tag, Unknown = unknown };
            System.Array.Copy(data, s.Array, data.Length);
            return s;
        }

        internal static Storage Fresh(Storage produced, bool onGpu)
        {
            var s = onGpu ? new Storage(produced.Type, produced.Capacity) : Host(produced.Type, produced.Capacity);
            if (onGpu) { s.OnDevice = true; Device.C.DeviceAllocations++; Device.C.LiveDeviceBytes += 4L * s.Capacity; }
            s.OverwriteWith(produced, onGpu);
            return s;
        }

        internal void OverwriteWith(Storage produced, bool onGpu)
        {
            System.Array.Copy(produced.Array, Array, produced.Capacity);
            Shape = produced.Shape; Tag = produced.Tag; Unknown = produced.Unknown;
            requestFrame = -1;
            pendingFrame = onGpu ? -1 : Device.Frame;
            Device.C.GraphBytesWritten += 4L * produced.Capacity;
        }

        /// <summary>ComputeTensorData.Pin: a CPU tensor bound to a GPU worker moves to the device.</summary>
        internal void Pin()
        {
            if (OnDevice) return;
            WaitIfPending();
            OnDevice = true;
            Device.C.DeviceAllocations++;
            Device.C.LiveDeviceBytes += 4L * Capacity;
            Device.C.BytesUploaded += 4L * Capacity;
        }

        /// <summary>A device tensor bound to a CPU worker is downloaded (blocking).</summary>
        internal void Unpin()
        {
            if (!OnDevice) return;
            Device.C.BlockingReadbacks++;
            Device.C.BytesDownloaded += 4L * Capacity;
            Device.C.LiveDeviceBytes -= 4L * Capacity;
            OnDevice = false;
        }

        internal void WriteFromHost(Array src, int n)
        {
            WaitIfPending();
            System.Array.Copy(src, Array, n);
            Tag = null; Unknown = false; requestFrame = -1;
            if (OnDevice) Device.C.BytesUploaded += 4L * n;
        }

        internal void CopyFrom(Storage src, int n)
        {
            System.Array.Copy(src.Array, Array, n);
            Tag = src.Tag; Unknown = src.Unknown; requestFrame = -1;
            pendingFrame = OnDevice ? -1 : Device.Frame;
        }

        internal void Request()
        {
            if (requestFrame >= 0) return;
            requestFrame = Device.Frame;
            Device.C.AsyncReadbacks++;
        }

        internal bool ReadbackDone()
        {
            if (OnDevice) return requestFrame >= 0 && Device.Frame - requestFrame >= Device.ReadbackLatencyFrames;
            return Device.Frame > pendingFrame;
        }

        internal void WaitIfPending()
        {
            if (!OnDevice && pendingFrame >= Device.Frame) { Device.C.BlockingReadbacks++; pendingFrame = -1; }
        }

        internal void ReadToHost(Array dst, int n)  // dst null: only the wait/accounting (a view is returned)
        {
            if (Unknown) throw new InvalidOperationException("read back a value whose bytes the stand-in does not have (tag " + Tag + ")");
            if (OnDevice)
            {
                if (!ReadbackDone()) Device.C.BlockingReadbacks++;
                Device.C.BytesDownloaded += 4L * n;
                requestFrame = -1;
            }
            else WaitIfPending();
            if (dst != null) System.Array.Copy(Array, dst, n);
        }

        internal void Free()
        {
            if (OnDevice) Device.C.LiveDeviceBytes -= 4L * Capacity;
            OnDevice = false;
        }
    }
}
