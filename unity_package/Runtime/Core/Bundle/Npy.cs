// Minimal .npy / .npz reader for baked voices (voices/<name>.npz written by `sentis-tts voice add`):
// little-endian float32 / int32 / int64 / float64 arrays and 0-d unicode strings, C order,
// uncompressed (np.savez) or deflated (np.savez_compressed) zip entries.
using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Text;

namespace SentisTts.Core
{
    public sealed class NpyArray
    {
        public string Descr;
        public int[] Shape;
        public float[] Floats;   // float32/float64 data (as float)
        public int[] Ints;       // int32/int64 data (as int, checked)
        public string Text;      // <U strings (0-d)
        public int Count { get { int n = 1; foreach (var d in Shape) n *= d; return n; } }
    }

    public static class Npy
    {
        public static NpyArray Read(byte[] b)
        {
            if (b.Length < 10 || b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY") throw new SentisTtsException("not a .npy array");
            int major = b[6];
            int hlen, off;
            if (major == 1) { hlen = b[8] | (b[9] << 8); off = 10; }
            else { hlen = BitConverter.ToInt32(b, 8); off = 12; }
            var header = Encoding.ASCII.GetString(b, off, hlen);
            off += hlen;
            var a = new NpyArray { Descr = Field(header, "descr").Trim('\'', '"', ' ') };
            if (Field(header, "fortran_order").Trim().StartsWith("True")) throw new SentisTtsException(".npy: Fortran-order arrays are not supported");
            var shape = Field(header, "shape").Trim().TrimStart('(').TrimEnd(')');
            var dims = new List<int>();
            foreach (var p in shape.Split(',')) if (p.Trim().Length > 0) dims.Add(int.Parse(p.Trim()));
            a.Shape = dims.ToArray();
            int n = a.Count;
            switch (a.Descr)
            {
                case "<f4": a.Floats = new float[n]; Buffer.BlockCopy(b, off, a.Floats, 0, 4 * n); break;
                case "<f8": a.Floats = new float[n]; for (int i = 0; i < n; i++) a.Floats[i] = (float)BitConverter.ToDouble(b, off + 8 * i); break;
                case "<i4": a.Ints = new int[n]; Buffer.BlockCopy(b, off, a.Ints, 0, 4 * n); break;
                case "<i8": a.Ints = new int[n]; for (int i = 0; i < n; i++) a.Ints[i] = checked((int)BitConverter.ToInt64(b, off + 8 * i)); break;
                default:
                    if (a.Descr.StartsWith("<U"))
                    {
                        int chars = int.Parse(a.Descr.Substring(2));
                        a.Text = Encoding.UTF32.GetString(b, off, 4 * chars * Math.Max(1, n)).TrimEnd('\0');
                        break;
                    }
                    throw new SentisTtsException(".npy: unsupported dtype " + a.Descr);
            }
            return a;
        }

        static string Field(string header, string key)
        {
            int k = header.IndexOf("'" + key + "'", StringComparison.Ordinal);
            if (k < 0) throw new SentisTtsException(".npy header has no '" + key + "'");
            int colon = header.IndexOf(':', k);
            int end;
            if (header[colon + 1 + CountSpaces(header, colon + 1)] == '(') end = header.IndexOf(')', colon) + 1;
            else end = header.IndexOf(',', colon);
            if (end < 0) end = header.IndexOf('}', colon);
            return header.Substring(colon + 1, end - colon - 1);
        }

        static int CountSpaces(string s, int i) { int n = 0; while (i + n < s.Length && s[i + n] == ' ') n++; return n; }

        /// <summary>name (without .npy) -> array. Reads the zip central directory itself (stored or
        /// deflated entries, zip64 sizes), so no System.IO.Compression.ZipArchive is needed.</summary>
        public static Dictionary<string, NpyArray> ReadNpz(Stream zip)
        {
            byte[] b;
            using (var ms = new MemoryStream()) { zip.CopyTo(ms); b = ms.ToArray(); }
            var r = new Dictionary<string, NpyArray>();
            int eocd = -1;
            for (int i = b.Length - 22; i >= Math.Max(0, b.Length - 22 - 65535); i--)
                if (BitConverter.ToUInt32(b, i) == 0x06054b50) { eocd = i; break; }
            if (eocd < 0) throw new SentisTtsException(".npz: not a zip file");
            int entries = BitConverter.ToUInt16(b, eocd + 10);
            long cd = BitConverter.ToUInt32(b, eocd + 16);
            for (int k = 0; k < entries; k++)
            {
                if (BitConverter.ToUInt32(b, (int)cd) != 0x02014b50) throw new SentisTtsException(".npz: corrupt central directory");
                int method = BitConverter.ToUInt16(b, (int)cd + 10);
                long csize = BitConverter.ToUInt32(b, (int)cd + 20), usize = BitConverter.ToUInt32(b, (int)cd + 24);
                int nlen = BitConverter.ToUInt16(b, (int)cd + 28), xlen = BitConverter.ToUInt16(b, (int)cd + 30), clen = BitConverter.ToUInt16(b, (int)cd + 32);
                long local = BitConverter.ToUInt32(b, (int)cd + 42);
                var name = Encoding.UTF8.GetString(b, (int)cd + 46, nlen);
                int x = (int)cd + 46 + nlen, xend = x + xlen;
                while (x + 4 <= xend)  // zip64 extended information
                {
                    int id = BitConverter.ToUInt16(b, x), len = BitConverter.ToUInt16(b, x + 2), q = x + 4;
                    if (id == 1)
                    {
                        if (usize == 0xFFFFFFFF) { usize = BitConverter.ToInt64(b, q); q += 8; }
                        if (csize == 0xFFFFFFFF) { csize = BitConverter.ToInt64(b, q); q += 8; }
                        if (local == 0xFFFFFFFF) { local = BitConverter.ToInt64(b, q); q += 8; }
                    }
                    x += 4 + len;
                }
                cd += 46 + nlen + xlen + clen;
                int data = (int)local + 30 + BitConverter.ToUInt16(b, (int)local + 26) + BitConverter.ToUInt16(b, (int)local + 28);
                byte[] raw;
                if (method == 0) { raw = new byte[usize]; Array.Copy(b, data, raw, 0, (int)usize); }
                else if (method == 8)
                {
                    using (var ds = new DeflateStream(new MemoryStream(b, data, (int)csize), CompressionMode.Decompress))
                    using (var o = new MemoryStream()) { ds.CopyTo(o); raw = o.ToArray(); }
                }
                else throw new SentisTtsException(".npz: unsupported zip compression method " + method);
                r[name.EndsWith(".npy") ? name.Substring(0, name.Length - 4) : name] = Read(raw);
            }
            return r;
        }
    }
}
