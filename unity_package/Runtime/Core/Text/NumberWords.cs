// Numbers as words, mirroring runtime_ref/text/numbers.py: English cardinals/ordinals (American,
// no "and"; digit by digit from 10^15) and Japanese kanji numerals (digit by digit from 10^20).
// Held to runtime_ref by the text_frontend golden trace.
using System;
using System.Collections.Generic;
using System.Numerics;
using System.Text;

namespace SentisTts.Core.Text
{
    public static class NumberWords
    {
        static readonly string[] Ones = { "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                                          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen" };
        static readonly string[] Tens = { "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety" };
        static readonly KeyValuePair<long, string>[] Scales = {
            new KeyValuePair<long, string>(1000000000000L, "trillion"), new KeyValuePair<long, string>(1000000000L, "billion"),
            new KeyValuePair<long, string>(1000000L, "million"), new KeyValuePair<long, string>(1000L, "thousand") };
        static readonly Dictionary<string, string> OrdinalIrregular = new Dictionary<string, string> {
            { "one", "first" }, { "two", "second" }, { "three", "third" }, { "five", "fifth" }, { "eight", "eighth" }, { "nine", "ninth" }, { "twelve", "twelfth" } };

        /// <summary>The value of a digit string (any Unicode decimal digits, like Python's int()).</summary>
        public static BigInteger Parse(string digits)
        {
            BigInteger v = BigInteger.Zero;
            foreach (var c in digits) v = v * 10 + (int)char.GetNumericValue(c);
            return v;
        }

        static int Digit(char c) { return (int)char.GetNumericValue(c); }

        static string Below1000(int n)
        {
            var words = new List<string>();
            if (n >= 100) { words.Add(Ones[n / 100] + " hundred"); n %= 100; }
            if (n >= 20) words.Add(Tens[n / 10] + (n % 10 != 0 ? "-" + Ones[n % 10] : ""));
            else if (n != 0 || words.Count == 0) words.Add(Ones[n]);
            return string.Join(" ", words.ToArray());
        }

        public static string EnCardinal(BigInteger n)
        {
            if (n.Sign < 0) return "minus " + EnCardinal(-n);
            if (n >= BigInteger.Pow(10, 15)) return EnDigits(n.ToString());
            long v = (long)n;
            if (v < 1000) return Below1000((int)v);
            var words = new List<string>();
            foreach (var s in Scales)
                if (v >= s.Key) { words.Add(Below1000((int)(v / s.Key)) + " " + s.Value); v %= s.Key; }
            if (v != 0) words.Add(Below1000((int)v));
            return string.Join(" ", words.ToArray());
        }

        public static string EnOrdinal(BigInteger n)
        {
            var words = EnCardinal(n);
            int sp = words.LastIndexOf(' ');
            string head = sp < 0 ? "" : words.Substring(0, sp + 1), last = sp < 0 ? words : words.Substring(sp + 1);
            int dash = last.LastIndexOf('-');
            string stemHead = dash < 0 ? "" : last.Substring(0, dash + 1), stem = dash < 0 ? last : last.Substring(dash + 1);
            string irregular;
            if (OrdinalIrregular.TryGetValue(stem, out irregular)) stem = irregular;
            else if (stem.EndsWith("y", StringComparison.Ordinal)) stem = stem.Substring(0, stem.Length - 1) + "ieth";
            else stem += "th";
            return head + stemHead + stem;
        }

        public static string EnDigits(string s)
        {
            var parts = new string[s.Length];
            for (int i = 0; i < s.Length; i++) parts[i] = Ones[Digit(s[i])];
            return string.Join(" ", parts);
        }

        const string JaDigitChars = "〇一二三四五六七八九";
        static readonly string[] JaGroups = { "", "万", "億", "兆", "京" };

        static string JaBelow10000(int n)
        {
            var sb = new StringBuilder();
            int[] values = { 1000, 100, 10 };
            string[] marks = { "千", "百", "十" };
            for (int k = 0; k < 3; k++)
            {
                int d = n / values[k];
                if (d != 0) { if (d != 1) sb.Append(JaDigitChars[d]); sb.Append(marks[k]); }
                n %= values[k];
            }
            if (n != 0) sb.Append(JaDigitChars[n]);
            return sb.ToString();
        }

        public static string JaCardinal(BigInteger n)
        {
            if (n.Sign < 0) return "マイナス" + JaCardinal(-n);
            if (n.IsZero) return "零";
            if (n >= BigInteger.Pow(10, 20)) return JaDigits(n.ToString());
            var parts = new List<string>();
            int g = 0;
            while (!n.IsZero)
            {
                int part = (int)(n % 10000);
                n /= 10000;
                if (part != 0) parts.Add((part == 1 && g != 0 ? "一" : JaBelow10000(part)) + JaGroups[g]);
                g++;
            }
            parts.Reverse();
            return string.Concat(parts.ToArray());
        }

        public static string JaDigits(string s)
        {
            var sb = new StringBuilder(s.Length);
            foreach (var c in s) sb.Append(JaDigitChars[Digit(c)]);
            return sb.ToString();
        }
    }
}
