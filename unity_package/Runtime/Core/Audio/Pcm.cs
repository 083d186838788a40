// PCM / WAV utilities (RIFF PCM16 and float32, mono or interleaved).
using System;
using System.IO;
using System.Text;

namespace SentisTts.Core.Audio
{
    public static class Pcm
    {
        /// <summary>float [-1, 1] -> int16 with clipping and round-half-away-from-zero.</summary>
        public static short[] ToPcm16(float[] x)
        {
            var r = new short[x.Length];
            for (int i = 0; i < x.Length; i++)
            {
                float v = x[i];
                if (float.IsNaN(v)) v = 0f;
                double s = Math.Round(Math.Max(-1.0, Math.Min(1.0, v)) * 32767.0, MidpointRounding.AwayFromZero);
                r[i] = (short)s;
            }
            return r;
        }

        public static float[] FromPcm16(short[] x)
        {
            var r = new float[x.Length];
            for (int i = 0; i < x.Length; i++) r[i] = x[i] / 32768f;
            return r;
        }

        /// <summary>Peak-normalise in place to at most `peak` (only scales down).</summary>
        public static void LimitPeak(float[] x, float peak = 0.99f)
        {
            float m = 0f;
            foreach (var v in x) m = Math.Max(m, Math.Abs(v));
            if (m > peak) { float g = peak / m; for (int i = 0; i < x.Length; i++) x[i] *= g; }
        }

        public static byte[] WavBytes(float[] samples, int sampleRate, int channels = 1, bool float32 = false)
        {
            using (var ms = new MemoryStream())
            {
                WriteWav(ms, samples, sampleRate, channels, float32);
                return ms.ToArray();
            }
        }

        public static void WriteWav(Stream s, float[] samples, int sampleRate, int channels = 1, bool float32 = false)
        {
            int bytesPer = float32 ? 4 : 2;
            int dataLen = samples.Length * bytesPer;
            var w = new BinaryWriter(s, Encoding.ASCII);
            w.Write(Encoding.ASCII.GetBytes("RIFF")); w.Write(36 + dataLen); w.Write(Encoding.ASCII.GetBytes("WAVE"));
            w.Write(Encoding.ASCII.GetBytes("fmt ")); w.Write(16); w.Write((short)(float32 ? 3 : 1)); w.Write((short)channels);
            w.Write(sampleRate); w.Write(sampleRate * channels * bytesPer); w.Write((short)(channels * bytesPer)); w.Write((short)(8 * bytesPer));
            w.Write(Encoding.ASCII.GetBytes("data")); w.Write(dataLen);
            if (float32) foreach (var v in samples) w.Write(v);
            else foreach (var v in ToPcm16(samples)) w.Write(v);
            w.Flush();
        }

        /// <summary>Read a PCM16 / PCM24 / PCM32 / float32 WAV; returns interleaved samples in [-1, 1].</summary>
        public static float[] ReadWav(byte[] bytes, out int sampleRate, out int channels)
        {
            var r = new BinaryReader(new MemoryStream(bytes));
            if (Encoding.ASCII.GetString(r.ReadBytes(4)) != "RIFF") throw new SentisTtsException("not a RIFF/WAV file");
            r.ReadInt32();
            if (Encoding.ASCII.GetString(r.ReadBytes(4)) != "WAVE") throw new SentisTtsException("not a WAVE file");
            int fmt = -1, bits = 0; sampleRate = 0; channels = 0;
            while (r.BaseStream.Position + 8 <= r.BaseStream.Length)
            {
                var id = Encoding.ASCII.GetString(r.ReadBytes(4));
                int len = r.ReadInt32();
                long next = r.BaseStream.Position + len + (len & 1);
                if (id == "fmt ")
                {
                    fmt = r.ReadInt16(); channels = r.ReadInt16(); sampleRate = r.ReadInt32(); r.ReadInt32(); r.ReadInt16(); bits = r.ReadInt16();
                    if (fmt == unchecked((short)0xFFFE) || fmt == -2) { r.ReadInt16(); r.ReadInt16(); r.ReadInt32(); fmt = r.ReadInt16(); }
                }
                else if (id == "data")
                {
                    if (fmt < 0) throw new SentisTtsException("WAV: data chunk before fmt chunk");
                    int n = len / (bits / 8);
                    var x = new float[n];
                    for (int i = 0; i < n; i++)
                    {
                        if (fmt == 3 && bits == 32) x[i] = r.ReadSingle();
                        else if (bits == 16) x[i] = r.ReadInt16() / 32768f;
                        else if (bits == 24) { int b0 = r.ReadByte(), b1 = r.ReadByte(), b2 = (sbyte)r.ReadByte(); x[i] = ((b2 << 16) | (b1 << 8) | b0) / 8388608f; }
                        else if (bits == 32) x[i] = r.ReadInt32() / 2147483648f;
                        else throw new SentisTtsException("WAV: unsupported sample format (" + bits + " bits, format " + fmt + ")");
                    }
                    return x;
                }
                r.BaseStream.Position = next;
            }
            throw new SentisTtsException("WAV: no data chunk");
        }
    }
}
