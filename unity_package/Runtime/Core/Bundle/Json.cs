// A small JSON reader (RFC 8259) for manifests, tokenizer files and test traces.
// System.Text.Json is not available in Unity and Core must not depend on UnityEngine, so this is
// self-contained. Values: Dictionary<string, object> (objects, insertion order kept in Keys list),
// List<object>, string, JsonNumber, bool, null.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace SentisTts.Core
{
    /// <summary>A JSON number kept as text, so integers and floats convert without loss.</summary>
    public sealed class JsonNumber
    {
        public readonly string Text;
        public JsonNumber(string text) { Text = text; }
        public long AsLong() { return long.Parse(Text, NumberStyles.Integer, CultureInfo.InvariantCulture); }
        public double AsDouble() { return double.Parse(Text, NumberStyles.Float, CultureInfo.InvariantCulture); }
        public bool IsInteger { get { return Text.IndexOfAny(new[] { '.', 'e', 'E' }) < 0; } }
        public override string ToString() { return Text; }
    }

    /// <summary>A JSON object that remembers key order.</summary>
    public sealed class JsonObject : Dictionary<string, object>
    {
        public readonly List<string> Order = new List<string>();
        public new void Add(string key, object value)
        {
            if (!ContainsKey(key)) Order.Add(key);
            this[key] = value;
        }

        public object Get(string key) { object v; return TryGetValue(key, out v) ? v : null; }
        public JsonObject Obj(string key) { return Get(key) as JsonObject; }
        public List<object> Arr(string key) { return Get(key) as List<object>; }
        public string Str(string key) { return Get(key) as string; }
        public long Long(string key)
        {
            var n = Get(key) as JsonNumber;
            if (n == null) throw new SentisTtsException("JSON: '" + key + "' is missing or not a number");
            return n.AsLong();
        }
        public int Int(string key) { return checked((int)Long(key)); }
        public double Double(string key)
        {
            var n = Get(key) as JsonNumber;
            if (n == null) throw new SentisTtsException("JSON: '" + key + "' is missing or not a number");
            return n.AsDouble();
        }
        public bool Bool(string key, bool dflt = false) { var v = Get(key); return v is bool ? (bool)v : dflt; }
        public string ToJsonText() { return Json.Write(this); }
    }

    public static class Json
    {
        public static object Parse(string text)
        {
            var p = new Parser(text);
            p.SkipWs();
            var v = p.Value();
            p.SkipWs();
            if (p.Pos != text.Length) throw p.Error("trailing characters after the JSON value");
            return v;
        }

        public static JsonObject ParseObject(string text)
        {
            var o = Parse(text) as JsonObject;
            if (o == null) throw new SentisTtsException("JSON: the document is not an object");
            return o;
        }

        public static int[] IntArray(object v)
        {
            var l = (List<object>)v;
            var r = new int[l.Count];
            for (int i = 0; i < r.Length; i++) r[i] = checked((int)((JsonNumber)l[i]).AsLong());
            return r;
        }

        public static long[] LongArray(object v)
        {
            var l = (List<object>)v;
            var r = new long[l.Count];
            for (int i = 0; i < r.Length; i++) r[i] = ((JsonNumber)l[i]).AsLong();
            return r;
        }

        /// <summary>Compact JSON text of a parsed value (numbers keep their original text).</summary>
        public static string Write(object v)
        {
            var sb = new StringBuilder();
            WriteTo(sb, v);
            return sb.ToString();
        }

        static void WriteTo(StringBuilder sb, object v)
        {
            if (v == null) { sb.Append("null"); return; }
            if (v is bool) { sb.Append((bool)v ? "true" : "false"); return; }
            if (v is string) { sb.Append(Quote((string)v)); return; }
            if (v is JsonNumber) { sb.Append(((JsonNumber)v).Text); return; }
            var o = v as JsonObject;
            if (o != null)
            {
                sb.Append('{');
                for (int i = 0; i < o.Order.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    sb.Append(Quote(o.Order[i])).Append(':');
                    WriteTo(sb, o[o.Order[i]]);
                }
                sb.Append('}');
                return;
            }
            var l = v as List<object>;
            if (l != null)
            {
                sb.Append('[');
                for (int i = 0; i < l.Count; i++) { if (i > 0) sb.Append(','); WriteTo(sb, l[i]); }
                sb.Append(']');
                return;
            }
            if (v is int || v is long || v is double || v is float)
            {
                sb.Append(Convert.ToString(v, CultureInfo.InvariantCulture));
                return;
            }
            throw new ArgumentException("Json.Write: unsupported value " + v.GetType().Name);
        }

        public static string Quote(string s)
        {
            var sb = new StringBuilder("\"");
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                        else sb.Append(c);
                        break;
                }
            }
            return sb.Append('"').ToString();
        }

        sealed class Parser
        {
            readonly string s;
            public int Pos;
            public Parser(string s) { this.s = s; }

            public SentisTtsException Error(string what)
            {
                int line = 1;
                for (int i = 0; i < Pos && i < s.Length; i++) if (s[i] == '\n') line++;
                return new SentisTtsException("JSON: " + what + " (line " + line + ")");
            }

            public void SkipWs()
            {
                while (Pos < s.Length && (s[Pos] == ' ' || s[Pos] == '\t' || s[Pos] == '\n' || s[Pos] == '\r')) Pos++;
            }

            public object Value()
            {
                if (Pos >= s.Length) throw Error("unexpected end of input");
                char c = s[Pos];
                if (c == '{') return Object();
                if (c == '[') return Array();
                if (c == '"') return String();
                if (c == '-' || (c >= '0' && c <= '9')) return Number();
                if (Match("true")) return true;
                if (Match("false")) return false;
                if (Match("null")) return null;
                // Python's json writes these for non-finite floats
                if (Match("NaN")) return new JsonNumber("NaN");
                if (Match("Infinity")) return new JsonNumber("Infinity");
                throw Error("unexpected character '" + c + "'");
            }

            bool Match(string word)
            {
                if (string.CompareOrdinal(s, Pos, word, 0, word.Length) == 0) { Pos += word.Length; return true; }
                return false;
            }

            JsonObject Object()
            {
                var o = new JsonObject();
                Pos++;
                SkipWs();
                if (Pos < s.Length && s[Pos] == '}') { Pos++; return o; }
                while (true)
                {
                    SkipWs();
                    if (Pos >= s.Length || s[Pos] != '"') throw Error("expected a string key");
                    var k = String();
                    SkipWs();
                    if (Pos >= s.Length || s[Pos] != ':') throw Error("expected ':'");
                    Pos++;
                    SkipWs();
                    o.Add(k, Value());
                    SkipWs();
                    if (Pos < s.Length && s[Pos] == ',') { Pos++; continue; }
                    if (Pos < s.Length && s[Pos] == '}') { Pos++; return o; }
                    throw Error("expected ',' or '}'");
                }
            }

            List<object> Array()
            {
                var a = new List<object>();
                Pos++;
                SkipWs();
                if (Pos < s.Length && s[Pos] == ']') { Pos++; return a; }
                while (true)
                {
                    SkipWs();
                    a.Add(Value());
                    SkipWs();
                    if (Pos < s.Length && s[Pos] == ',') { Pos++; continue; }
                    if (Pos < s.Length && s[Pos] == ']') { Pos++; return a; }
                    throw Error("expected ',' or ']'");
                }
            }

            string String()
            {
                Pos++;
                var sb = new StringBuilder();
                while (true)
                {
                    if (Pos >= s.Length) throw Error("unterminated string");
                    char c = s[Pos++];
                    if (c == '"') return sb.ToString();
                    if (c != '\\') { sb.Append(c); continue; }
                    if (Pos >= s.Length) throw Error("unterminated escape");
                    char e = s[Pos++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            if (Pos + 4 > s.Length) throw Error("bad \\u escape");
                            sb.Append((char)int.Parse(s.Substring(Pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                            Pos += 4;
                            break;
                        default: throw Error("bad escape '\\" + e + "'");
                    }
                }
            }

            JsonNumber Number()
            {
                int start = Pos;
                if (s[Pos] == '-') Pos++;
                if (Match("Infinity")) return new JsonNumber("-Infinity");
                while (Pos < s.Length)
                {
                    char c = s[Pos];
                    if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') Pos++;
                    else break;
                }
                return new JsonNumber(s.Substring(start, Pos - start));
            }
        }
    }
}
