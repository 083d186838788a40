// Qwen2's pre-tokenizer split, as a hand-written scanner (no Regex, so Mono/IL2CPP Unicode tables
// and regex engines do not matter). Pattern (tokenizer.json, behaviour "isolated"):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Alternatives are tried in order at each position with the regex's backtracking outcome spelled
// out; L/N come from UnicodeClasses (generated), \s is Unicode White_Space. Mirrors
// runtime_ref/text/pretokenize.py.
using System.Collections.Generic;
using System.Text;

namespace SentisTts.Core.Text
{
    public static class Pretokenizer
    {
        static bool InRanges(int[] r, int c)
        {
            int lo = 0, hi = r.Length / 2 - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >> 1;
                if (c < r[2 * mid]) hi = mid - 1;
                else if (c > r[2 * mid + 1]) lo = mid + 1;
                else return true;
            }
            return false;
        }

        public static bool IsLetter(int c) { return InRanges(UnicodeClasses.Letters, c); }
        public static bool IsNumber(int c) { return InRanges(UnicodeClasses.Numbers, c); }

        public static bool IsWhiteSpace(int c)
        {
            return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
                   (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
        }

        static bool IsNewline(int c) { return c == '\r' || c == '\n'; }
        static bool IsOther(int c) { return !IsWhiteSpace(c) && !IsLetter(c) && !IsNumber(c); }

        static bool CaseEq(int c, char lower)
        {
            if (c == lower || c == char.ToUpperInvariant(lower)) return true;
            return lower == 's' && c == 0x17F;  // LATIN SMALL LETTER LONG S folds to s (Python re, Oniguruma)
        }

        public static int[] CodePoints(string s)
        {
            var cps = new List<int>(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                {
                    cps.Add(char.ConvertToUtf32(s[i], s[i + 1]));
                    i++;
                }
                else cps.Add(s[i]);
            }
            return cps.ToArray();
        }

        /// <summary>Length of the match at i (every position matches one alternative).</summary>
        static int MatchAt(int[] t, int i)
        {
            int n = t.Length;
            int c = t[i];
            // 1. contractions
            if (c == '\'' && i + 1 < n)
            {
                int a = t[i + 1];
                if (CaseEq(a, 's') || CaseEq(a, 't') || CaseEq(a, 'm') || CaseEq(a, 'd')) return 2;
                if (i + 2 < n)
                {
                    int b = t[i + 2];
                    if ((CaseEq(a, 'r') && CaseEq(b, 'e')) || (CaseEq(a, 'v') && CaseEq(b, 'e')) || (CaseEq(a, 'l') && CaseEq(b, 'l'))) return 3;
                }
            }
            // 2. [^\r\n\p{L}\p{N}]?\p{L}+
            if (!IsNewline(c) && !IsLetter(c) && !IsNumber(c) && i + 1 < n && IsLetter(t[i + 1]))
            {
                int j = i + 1;
                while (j < n && IsLetter(t[j])) j++;
                return j - i;
            }
            if (IsLetter(c))
            {
                int j = i;
                while (j < n && IsLetter(t[j])) j++;
                return j - i;
            }
            // 3. \p{N}
            if (IsNumber(c)) return 1;
            // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
            int k = (c == ' ' && i + 1 < n && IsOther(t[i + 1])) ? i + 1 : i;
            if (IsOther(t[k]))
            {
                int j = k;
                while (j < n && IsOther(t[j])) j++;
                while (j < n && IsNewline(t[j])) j++;
                return j - i;
            }
            // whitespace from here on: run i..end
            int end = i;
            while (end < n && IsWhiteSpace(t[end])) end++;
            // 5. \s*[\r\n]+  -> up to the last newline of the run
            for (int p = end - 1; p >= i; p--)
                if (IsNewline(t[p])) return p + 1 - i;
            // 6. \s+(?!\S)
            if (end == n) return end - i;
            if (end - i >= 2) return end - 1 - i;
            // 7. \s+
            return end - i;
        }

        /// <summary>The pieces of `text` (their concatenation is `text`).</summary>
        public static List<int[]> Split(int[] cps)
        {
            var out_ = new List<int[]>();
            int i = 0;
            while (i < cps.Length)
            {
                int len = MatchAt(cps, i);
                var piece = new int[len];
                System.Array.Copy(cps, i, piece, 0, len);
                out_.Add(piece);
                i += len;
            }
            return out_;
        }

        public static List<string> Split(string text)
        {
            var r = new List<string>();
            foreach (var p in Split(CodePoints(text))) r.Add(FromCodePoints(p));
            return r;
        }

        public static string FromCodePoints(int[] cps)
        {
            var sb = new StringBuilder(cps.Length);
            foreach (var c in cps) sb.Append(char.ConvertFromUtf32(c));
            return sb.ToString();
        }
    }
}
