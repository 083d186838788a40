// Compile-only stub: UnityEngine names used by the package (no behaviour).
using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace UnityEngine
{
    public class Object { public string name { get; set; } }
    public class ScriptableObject : Object { public static T CreateInstance<T>() where T : ScriptableObject, new() { return new T(); } }
    public class Component : Object { public T GetComponent<T>() { return default(T); } }
    public class Behaviour : Component { public bool enabled { get; set; } }
    public class MonoBehaviour : Behaviour { public CancellationToken destroyCancellationToken { get { return default(CancellationToken); } } }
    public class TextAsset : Object { public string text { get { return ""; } } public byte[] bytes { get { return new byte[0]; } } }
    public sealed class AudioClip : Object { public static AudioClip Create(string name, int lengthSamples, int channels, int frequency, bool stream) { return new AudioClip(); } public int samples { get { return 0; } } public int channels { get { return 1; } } public int frequency { get { return 16000; } } public bool GetData(float[] data, int offsetSamples) { return true; } }
    public sealed class AudioSource : Behaviour { public AudioClip clip { get; set; } public bool playOnAwake { get; set; } public bool loop { get; set; } public bool isPlaying { get { return false; } } public void Play() { } }
    public static class AudioSettings { public static int outputSampleRate { get { return 48000; } } }
    public static class Time { public static float realtimeSinceStartup { get { return 0f; } } public static double realtimeSinceStartupAsDouble { get { return 0; } } }
    public static class Mathf { public static int Max(int a, int b) { return Math.Max(a, b); } }
    public static class Debug
    {
        public static void Log(object message) { }
        public static void LogWarning(object message) { }
        public static void LogError(object message) { }
    }

    public class Awaitable
    {
        public static Awaitable NextFrameAsync(CancellationToken cancellationToken = default(CancellationToken)) { return new Awaitable(); }
        public Awaiter GetAwaiter() { return new Awaiter(); }
        public struct Awaiter : INotifyCompletion
        {
            public bool IsCompleted { get { return true; } }
            public void OnCompleted(Action continuation) { continuation(); }
            public void GetResult() { }
        }
    }

    public class PropertyAttribute : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class SerializeField : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string header) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class TooltipAttribute : PropertyAttribute { public TooltipAttribute(string tooltip) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class TextAreaAttribute : PropertyAttribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class RangeAttribute : PropertyAttribute { public RangeAttribute(float min, float max) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class RequireComponent : Attribute { public RequireComponent(Type type) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class CreateAssetMenuAttribute : Attribute { public string menuName { get; set; } public string fileName { get; set; } }
}

namespace Unity.Collections
{
    // the members of UnityEngine's NativeArray<T> the package uses (Tensor<T>.DownloadToNativeArray)
    public struct NativeArray<T> : IDisposable where T : struct
    {
        public int Length { get { return 0; } }
        public T this[int index] { get { return default(T); } set { } }
        public void Dispose() { }
        public void CopyTo(T[] array) { }
        public static void Copy(NativeArray<T> src, int srcIndex, T[] dst, int dstIndex, int length) { }
    }
}
