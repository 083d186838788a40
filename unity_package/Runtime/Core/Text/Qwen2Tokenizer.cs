// Qwen2 byte-level BPE with added (special) tokens. Mirrors runtime_ref/text/bpe.py:
//   1. added tokens split the raw text first (leftmost match, longest token first at a position);
//   2. other segments: NFC -> Qwen2 pre-tokenizer -> UTF-8 bytes mapped through GPT-2's
//      bytes<->unicode table -> repeatedly merge the lowest-ranked adjacent pair -> vocab ids.
// No BOS/EOS is added. Text normalisation (numbers to words, Japanese readings) is NOT ported:
// pass already-normalised text (see docs/unity.md).
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace SentisTts.Core.Text
{
    public sealed class AddedToken
    {
        public int Id;
        public string Content;
        public bool Special = true, LStrip, RStrip;
    }

    public sealed class Qwen2Tokenizer
    {
        readonly Dictionary<string, int> vocab;
        readonly Dictionary<string, int> ranks = new Dictionary<string, int>();  // "a b" -> rank
        readonly Dictionary<int, string> idToToken = new Dictionary<int, string>();
        readonly List<AddedToken> addedByLength;  // longest first (stable over id order)
        readonly Dictionary<int, AddedToken> addedById = new Dictionary<int, AddedToken>();
        readonly Dictionary<string, int> addedByContent = new Dictionary<string, int>();
        readonly string[] byteToUnicode = new string[256];
        readonly Dictionary<char, byte> unicodeToByte = new Dictionary<char, byte>();
        readonly Dictionary<string, int[]> cache = new Dictionary<string, int[]>();

        public Qwen2Tokenizer(Dictionary<string, int> vocab, IList<KeyValuePair<string, string>> merges, IList<AddedToken> added)
        {
            this.vocab = vocab;
            for (int r = 0; r < merges.Count; r++)
            {
                var key = merges[r].Key + " " + merges[r].Value;
                if (!ranks.ContainsKey(key)) ranks[key] = r;
            }
            foreach (var kv in vocab) idToToken[kv.Value] = kv.Key;
            var sorted = new List<AddedToken>(added);
            sorted.Sort((a, b) => a.Id.CompareTo(b.Id));
            foreach (var t in sorted)
            {
                string existing;
                if (idToToken.TryGetValue(t.Id, out existing) && existing != t.Content)
                    throw new SentisTtsException("added token '" + t.Content + "' has id " + t.Id + ", which vocab.json gives to '" +
                                                 existing + "'; the tokenizer files do not belong together");
                addedById[t.Id] = t;
                addedByContent[t.Content] = t.Id;
            }
            addedByLength = StableSortByLengthDesc(sorted);
            var keep = new List<int>();
            for (int b = '!'; b <= '~'; b++) keep.Add(b);
            for (int b = 0xA1; b <= 0xAC; b++) keep.Add(b);
            for (int b = 0xAE; b <= 0xFF; b++) keep.Add(b);
            int extra = 0;
            for (int b = 0; b < 256; b++)
            {
                char c = keep.Contains(b) ? (char)b : (char)(256 + extra++);
                byteToUnicode[b] = c.ToString();
                unicodeToByte[c] = (byte)b;
            }
        }

        static List<AddedToken> StableSortByLengthDesc(List<AddedToken> byId)
        {
            var idx = new List<KeyValuePair<int, AddedToken>>();
            for (int i = 0; i < byId.Count; i++) idx.Add(new KeyValuePair<int, AddedToken>(i, byId[i]));
            idx.Sort((a, b) =>
            {
                int c = b.Value.Content.Length.CompareTo(a.Value.Content.Length);
                return c != 0 ? c : a.Key.CompareTo(b.Key);
            });
            return idx.ConvertAll(kv => kv.Value);
        }

        // -- loading -----------------------------------------------------------------------------
        /// <summary>A bundle's text/ folder: vocab.json, merges.txt and the resolved special_tokens.json.</summary>
        public static Qwen2Tokenizer FromDirectory(string dir)
        {
            var v = Path.Combine(dir, "vocab.json");
            var m = Path.Combine(dir, "merges.txt");
            var s = Path.Combine(dir, "special_tokens.json");
            foreach (var p in new[] { v, m, s })
                if (!File.Exists(p)) throw new SentisTtsException(p + ": missing tokenizer file (export the bundle's text component)");
            return FromStrings(File.ReadAllText(v, Encoding.UTF8), File.ReadAllText(m, Encoding.UTF8), File.ReadAllText(s, Encoding.UTF8));
        }

        public static Qwen2Tokenizer FromStrings(string vocabJson, string mergesTxt, string specialTokensJson)
        {
            var vo = Json.ParseObject(vocabJson);
            var vocab = new Dictionary<string, int>();
            foreach (var k in vo.Order) vocab[k] = (int)((JsonNumber)vo[k]).AsLong();
            var merges = new List<KeyValuePair<string, string>>();
            var lines = mergesTxt.Split('\n');
            for (int n = 0; n < lines.Length; n++)
            {
                var line = lines[n].TrimEnd('\r');
                if (line.Length == 0 || (n == 0 && line.StartsWith("#version"))) continue;
                var parts = line.Split(' ');
                if (parts.Length != 2) throw new SentisTtsException("merges.txt:" + (n + 1) + ": a merge line must be two tokens separated by one space");
                merges.Add(new KeyValuePair<string, string>(parts[0], parts[1]));
            }
            var added = new List<AddedToken>();
            if (specialTokensJson != null)
                foreach (JsonObject t in Json.ParseObject(specialTokensJson).Arr("added_tokens"))
                    added.Add(new AddedToken { Id = t.Int("id"), Content = t.Str("content"), Special = t.Bool("special", true),
                                               LStrip = t.Bool("lstrip"), RStrip = t.Bool("rstrip") });
            return new Qwen2Tokenizer(vocab, merges, added);
        }

        // -- encoding ----------------------------------------------------------------------------
        public int TokenToId(string token)
        {
            int id;
            if (addedByContent.TryGetValue(token, out id) || vocab.TryGetValue(token, out id)) return id;
            throw new SentisTtsException("token '" + token + "' is not in this tokenizer's vocabulary");
        }

        public List<int> Encode(string text)
        {
            var ids = new List<int>();
            int pos = 0, segStart = 0;
            while (pos < text.Length)
            {
                int len;
                var tok = MatchAdded(text, pos, out len);
                if (tok == null) { pos++; continue; }
                if (pos > segStart) EncodeOrdinary(text.Substring(segStart, pos - segStart), ids);
                ids.Add(tok.Id);
                pos += len;
                segStart = pos;
            }
            if (segStart < text.Length) EncodeOrdinary(text.Substring(segStart), ids);
            return ids;
        }

        AddedToken MatchAdded(string text, int pos, out int length)
        {
            length = 0;
            foreach (var t in addedByLength)
            {
                int start = pos;
                int wsEnd = pos;
                if (t.LStrip) while (wsEnd < text.Length && Pretokenizer.IsWhiteSpace(text[wsEnd])) wsEnd++;
                // [ws]* is greedy; backtrack to any prefix of the run where the content matches
                for (int s = wsEnd; s >= start; s--)
                {
                    if (string.CompareOrdinal(text, s, t.Content, 0, t.Content.Length) == 0 && s + t.Content.Length <= text.Length)
                    {
                        int e = s + t.Content.Length;
                        if (t.RStrip) while (e < text.Length && Pretokenizer.IsWhiteSpace(text[e])) e++;
                        length = e - pos;
                        return t;
                    }
                    if (!t.LStrip) break;
                }
            }
            return null;
        }

        public void EncodeOrdinary(string text, List<int> ids)
        {
            foreach (var piece in Pretokenizer.Split(text.Normalize(NormalizationForm.FormC))) ids.AddRange(Bpe(piece));
        }

        int[] Bpe(string piece)
        {
            int[] cached;
            if (cache.TryGetValue(piece, out cached)) return cached;
            var bytes = Encoding.UTF8.GetBytes(piece);
            var word = new List<string>(bytes.Length);
            foreach (var b in bytes) word.Add(byteToUnicode[b]);
            while (word.Count > 1)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i < word.Count - 1; i++)
                {
                    int r;
                    if (ranks.TryGetValue(word[i] + " " + word[i + 1], out r) && r < bestRank) { best = i; bestRank = r; }
                }
                if (best < 0) break;
                string a = word[best], bb = word[best + 1];
                var merged = new List<string>(word.Count);
                for (int i = 0; i < word.Count; i++)
                {
                    if (i < word.Count - 1 && word[i] == a && word[i + 1] == bb) { merged.Add(a + bb); i++; }
                    else merged.Add(word[i]);
                }
                word = merged;
            }
            var ids = new int[word.Count];
            for (int i = 0; i < ids.Length; i++)
            {
                if (!vocab.TryGetValue(word[i], out ids[i]))
                    throw new SentisTtsException("BPE produced '" + word[i] + "', which is not in vocab.json; vocab.json and merges.txt do not belong together");
            }
            if (cache.Count > 100000) cache.Clear();
            cache[piece] = ids;
            return ids;
        }

        // -- decoding ----------------------------------------------------------------------------
        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
        {
            var sb = new StringBuilder();
            var buf = new List<byte>();
            foreach (var i in ids)
            {
                AddedToken t;
                if (addedById.TryGetValue(i, out t))
                {
                    if (buf.Count > 0) { sb.Append(Encoding.UTF8.GetString(buf.ToArray())); buf.Clear(); }
                    if (!(skipSpecialTokens && t.Special)) sb.Append(t.Content);
                    continue;
                }
                string tok;
                if (!idToToken.TryGetValue(i, out tok)) throw new SentisTtsException("id " + i + " is not in this tokenizer");
                foreach (var c in tok) buf.Add(unicodeToByte[c]);
            }
            if (buf.Count > 0) sb.Append(Encoding.UTF8.GetString(buf.ToArray()));
            return sb.ToString();
        }
    }
}
