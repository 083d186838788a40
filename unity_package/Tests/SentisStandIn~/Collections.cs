// Stand-in of the part of UnityEngine's Unity.Collections.NativeArray<T> the package uses: a view of
// native memory (here: of the stand-in's storage array, no copy, no managed allocation).
using System;

namespace Unity.Collections
{
    public struct NativeArray<T> : IDisposable where T : struct
    {
        readonly T[] data;
        readonly int length;

        internal NativeArray(T[] data, int length) { this.data = data; this.length = length; }

        public int Length { get { return length; } }
        public T this[int index]
        {
            get { if ((uint)index >= (uint)length) throw new IndexOutOfRangeException(); return data[index]; }
            set { if ((uint)index >= (uint)length) throw new IndexOutOfRangeException(); data[index] = value; }
        }
        public void Dispose() { }
        public void CopyTo(T[] array)
        {
            if (array.Length != length) throw new ArgumentException("NativeArray.CopyTo: lengths differ");
            Array.Copy(data, array, length);
        }
        public static void Copy(NativeArray<T> src, int srcIndex, T[] dst, int dstIndex, int length)
        {
            if (srcIndex < 0 || length < 0 || srcIndex + length > src.length) throw new ArgumentOutOfRangeException("length");
            Array.Copy(src.data, srcIndex, dst, dstIndex, length);
        }
    }
}
