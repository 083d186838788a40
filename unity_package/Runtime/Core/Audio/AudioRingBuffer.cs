// Single-producer / single-consumer float ring buffer between the synthesis code (main thread)
// and Unity's audio thread (OnAudioFilterRead), plus a streaming linear resampler from the
// model's 24 kHz to the output rate.
using System;

namespace SentisTts.Core.Audio
{
    public sealed class AudioRingBuffer
    {
        readonly float[] buf;
        readonly object gate = new object();
        int read, count;

        public AudioRingBuffer(int capacity) { buf = new float[capacity]; }
        public int Capacity { get { return buf.Length; } }
        public int Count { get { lock (gate) return count; } }
        public int Free { get { lock (gate) return buf.Length - count; } }

        /// <summary>Append as much of x[offset..offset+n) as fits; returns how many were written.</summary>
        public int Write(float[] x, int offset, int n)
        {
            lock (gate)
            {
                n = Math.Min(n, buf.Length - count);
                int w = (read + count) % buf.Length;
                int first = Math.Min(n, buf.Length - w);
                Array.Copy(x, offset, buf, w, first);
                Array.Copy(x, offset + first, buf, 0, n - first);
                count += n;
                return n;
            }
        }

        /// <summary>Read up to n samples into dst[offset..]; returns how many were read (rest untouched).</summary>
        public int Read(float[] dst, int offset, int n)
        {
            lock (gate)
            {
                n = Math.Min(n, count);
                int first = Math.Min(n, buf.Length - read);
                Array.Copy(buf, read, dst, offset, first);
                Array.Copy(buf, 0, dst, offset + first, n - first);
                read = (read + n) % buf.Length;
                count -= n;
                return n;
            }
        }

        public void Clear() { lock (gate) { read = 0; count = 0; } }
    }

    /// <summary>Streaming linear-interpolation resampler (mono). Keeps its phase across Process calls,
    /// so chunked input gives the same output as one call (up to rounding).</summary>
    public sealed class LinearResampler
    {
        readonly double step;  // input samples per output sample
        double t;              // next output position; index -1 = last sample of the previous block
        float last;

        public LinearResampler(int fromRate, int toRate) { step = (double)fromRate / toRate; }

        public float[] Process(float[] x)
        {
            int n = x.Length;
            if (n == 0) return x;
            var outp = new System.Collections.Generic.List<float>((int)(n / step) + 2);
            while (t <= n - 1)
            {
                int i = (int)Math.Floor(t);
                double f = t - i;
                float a = i < 0 ? last : x[i];
                float b = i + 1 < n ? x[i + 1] : a;
                outp.Add((float)(a + (b - a) * f));
                t += step;
            }
            t -= n;
            last = x[n - 1];
            return outp.ToArray();
        }
    }
}
