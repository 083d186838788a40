// Compile-only stub: names/signatures of com.unity.ai.inference 2.2+ used by the package.
using System;
using System.Collections.Generic;

namespace Unity.InferenceEngine
{
    public enum BackendType { GPUCompute, CPU, GPUPixel }
    public enum DataType { Float, Int }
    public enum QuantizationType { Float16, Uint8 }

    public struct TensorShape
    {
        readonly int[] dims;
        public TensorShape(params int[] shape) { dims = (int[])shape.Clone(); }
        public int rank { get { return dims.Length; } }
        public int this[int axis] { get { return dims[axis]; } }
        public int length { get { int n = 1; foreach (var d in dims) n *= d; return n; } }
    }

    public abstract class Tensor : IDisposable
    {
        public TensorShape shape { get; protected set; }
        public DataType dataType { get; protected set; }
        public int count { get { return shape.length; } }
        public void Dispose() { }
    }

    public class Tensor<T> : Tensor where T : struct  // "unmanaged" in Unity; mcs lacks that constraint
    {
        public Tensor(TensorShape shape) { this.shape = shape; }
        public Tensor(TensorShape shape, T[] srcData) { this.shape = shape; }
        public T[] DownloadToArray() { return new T[count]; }
    }

    public class ModelAsset : UnityEngine.ScriptableObject { }

    public class Model
    {
        public struct Input { public string name; public int index; public DataType dataType; }
        public struct Output { public string name; public int index; }
        public List<Input> inputs = new List<Input>();
        public List<Output> outputs = new List<Output>();
    }

    public static class ModelLoader
    {
        public static Model Load(ModelAsset modelAsset) { return new Model(); }
        public static Model Load(string path) { return new Model(); }
        public static Model Load(System.IO.Stream stream) { return new Model(); }
    }

    public static class ModelWriter
    {
        public static void Save(string fileName, Model model) { }
        public static void Save(System.IO.Stream stream, Model model) { }
    }

    public static class ModelQuantizer
    {
        public static void QuantizeWeights(QuantizationType quantizationType, ref Model model) { }
    }

    public class Worker : IDisposable
    {
        public Worker(Model model, BackendType backendType) { }
        public void SetInput(string name, Tensor input) { }
        public void SetInput(int index, Tensor input) { }
        public void Schedule() { }
        public Tensor PeekOutput(string name) { return null; }
        public void CopyOutput(string name, ref Tensor tensor) { }
        public void Dispose() { }
    }
}
