// Text normalisation before tokenisation, mirroring runtime_ref/text/normalize.py (held to it by the
// text_frontend golden trace over the multilingual corpus):
// - text with `<|`...`|>` control tokens is left untouched (official behaviour);
// - English: numbers (2026, 1,234, 3.5, -4, 21st, 7:05), percent, currency ($ € £ ¥) and & + = @
//   become words;
// - Japanese: Arabic numerals -> kanji numerals, % and currency -> katakana words. Kanji readings
//   (runtime_ref's default, pyopenjtalk) are NOT done in C#: pass kana, or text whose readings were
//   baked at build time (`sentis-tts` normalises with readings; see docs/unity.md);
// - Chinese: the official light clean-up (numbers stay digits); Korean/other: blanks only.
using System;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;

namespace SentisTts.Core.Text
{
    public static class TextNormalizer
    {
        static readonly Regex Kana = new Regex("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]");
        static readonly Regex Han = new Regex("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]");
        static readonly Regex Hangul = new Regex("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]");

        const string NumCore = @"(?<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?<frac>\d+))?";
        const string Num = @"(?<sign>(?<![\w.,])-)?" + NumCore;
        static readonly Regex Currency = new Regex(@"(?<cur>[$€£¥])\s?" + NumCore);
        static readonly Regex Percent = new Regex(Num + @"\s?%");
        static readonly Regex Ordinal = new Regex(@"\b(?<int>\d+)(?<suf>st|nd|rd|th)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        static readonly Regex Number = new Regex(Num);
        static readonly Regex Time = new Regex(@"(?<![\d:])(?<h>[01]?\d|2[0-3]):(?<m>[0-5]\d)(?![\d:])");
        static readonly Regex Blanks = new Regex(@"[ \t]{2,}");

        /// <summary>'ja' if there is any kana, else 'zh' for CJK ideographs, 'ko' for Hangul, else 'en'.</summary>
        public static string DetectLanguage(string text)
        {
            if (Kana.IsMatch(text)) return "ja";
            if (Han.IsMatch(text)) return "zh";
            if (Hangul.IsMatch(text)) return "ko";
            return "en";
        }

        public static bool HasControlTokens(string text) { return text.Contains("<|") && text.Contains("|>"); }

        static string Fullwidth(string text)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var c in text)
            {
                if (c >= '０' && c <= '９') sb.Append((char)('0' + (c - '０')));
                else switch (c)
                {
                    case '％': sb.Append('%'); break;
                    case '＄': sb.Append('$'); break;
                    case '￥': sb.Append('¥'); break;
                    case '．': sb.Append('.'); break;
                    case '，': sb.Append(','); break;
                    default: sb.Append(c); break;
                }
            }
            return sb.ToString();
        }

        static BigInteger IntValue(string s) { return NumberWords.Parse(s.Replace(",", "")); }

        static string EnNumber(Match m)
        {
            var i = m.Groups["int"].Value;
            string words = i.Length > 1 && i[0] == '0' && !i.Contains(",") ? NumberWords.EnDigits(i) : NumberWords.EnCardinal(IntValue(i));
            if (m.Groups["frac"].Success) words += " point " + NumberWords.EnDigits(m.Groups["frac"].Value);
            if (m.Groups["sign"].Success) words = "minus " + words;
            return words;
        }

        static string EnCurrency(Match m)
        {
            string one, many, subOne, subMany;
            switch (m.Groups["cur"].Value)
            {
                case "$": one = "dollar"; many = "dollars"; subOne = "cent"; subMany = "cents"; break;
                case "€": one = "euro"; many = "euros"; subOne = "cent"; subMany = "cents"; break;
                case "£": one = "pound"; many = "pounds"; subOne = "penny"; subMany = "pence"; break;
                default: one = "yen"; many = "yen"; subOne = null; subMany = null; break;
            }
            var whole = IntValue(m.Groups["int"].Value);
            var frac = m.Groups["frac"].Success ? m.Groups["frac"].Value : null;
            if (frac != null && frac.Length == 2 && subOne != null)
            {
                var cents = NumberWords.Parse(frac);
                var parts = new System.Collections.Generic.List<string>();
                if (!whole.IsZero) parts.Add(NumberWords.EnCardinal(whole) + " " + (whole.IsOne ? one : many));
                if (!cents.IsZero || whole.IsZero) parts.Add(NumberWords.EnCardinal(cents) + " " + (cents.IsOne ? subOne : subMany));
                return string.Join(" and ", parts.ToArray());
            }
            return EnNumber(m) + " " + (whole.IsOne && frac == null ? one : many);
        }

        static string EnTime(Match m)
        {
            int h = int.Parse(m.Groups["h"].Value, CultureInfo.InvariantCulture), mi = int.Parse(m.Groups["m"].Value, CultureInfo.InvariantCulture);
            if (mi == 0) return NumberWords.EnCardinal(h) + " o'clock";
            return NumberWords.EnCardinal(h) + " " + (mi < 10 ? "oh " : "") + NumberWords.EnCardinal(mi);
        }

        public static string NormalizeEnglish(string text)
        {
            text = Fullwidth(text);
            text = Time.Replace(text, EnTime);
            text = Currency.Replace(text, EnCurrency);
            text = Percent.Replace(text, m => EnNumber(m) + " percent");
            text = Ordinal.Replace(text, m => NumberWords.EnOrdinal(NumberWords.Parse(m.Groups["int"].Value)));
            text = Number.Replace(text, EnNumber);
            text = text.Replace("&", " and ").Replace("+", " plus ").Replace("=", " equals ").Replace("@", " at ").Replace("%", " percent ");
            return Blanks.Replace(text, " ").Trim();
        }

        static string JaNumber(Match m)
        {
            var i = m.Groups["int"].Value;
            string words = i.Length > 1 && i[0] == '0' && !i.Contains(",") ? NumberWords.JaDigits(i) : NumberWords.JaCardinal(IntValue(i));
            if (m.Groups["frac"].Success) words += "点" + NumberWords.JaDigits(m.Groups["frac"].Value);
            if (m.Groups["sign"].Success) words = "マイナス" + words;
            return words;
        }

        /// <summary>Digits -> kanji numerals, % and currency -> katakana words (no reading conversion).</summary>
        public static string NormalizeJapaneseNumbers(string text)
        {
            text = Fullwidth(text);
            text = Time.Replace(text, m =>
            {
                int h = int.Parse(m.Groups["h"].Value, CultureInfo.InvariantCulture), mi = int.Parse(m.Groups["m"].Value, CultureInfo.InvariantCulture);
                return NumberWords.JaCardinal(h) + "時" + (mi != 0 ? NumberWords.JaCardinal(mi) + "分" : "");
            });
            text = Currency.Replace(text, m =>
            {
                var cur = m.Groups["cur"].Value;
                return JaNumber(m) + (cur == "$" ? "ドル" : cur == "€" ? "ユーロ" : cur == "£" ? "ポンド" : "円");
            });
            text = Percent.Replace(text, m => JaNumber(m) + "パーセント");
            text = Number.Replace(text, JaNumber);
            return text.Replace("%", "パーセント").Replace("&", "アンド").Replace("+", "プラス").Replace("=", "イコール");
        }

        static readonly Regex ZhBlanks = new Regex(@"(?<![\x21-\x7e]) +|(?<=[\x21-\x7e]) +(?![\x21-\x7e])");
        static readonly Regex ZhTrailingComma = new Regex(@"[，,、]+$");

        public static string NormalizeChinese(string text)
        {
            text = text.Replace("\n", "");
            text = ZhBlanks.Replace(text, "");
            text = text.Replace("²", "平方").Replace("³", "立方");
            foreach (var ch in new[] { "（", "）", "【", "】", "`" }) text = text.Replace(ch, "");
            text = text.Replace("——", " ").Replace(" - ", "，");
            return ZhTrailingComma.Replace(text, "。");
        }

        /// <summary>runtime_ref normalize_text(text, lang, japanese_reading=False). `lang`: null = DetectLanguage.</summary>
        public static string Normalize(string text, string lang = null)
        {
            if (HasControlTokens(text) || text.Trim().Length == 0) return text;
            text = text.Trim();
            lang = lang ?? DetectLanguage(text);
            switch (lang)
            {
                case "en": return NormalizeEnglish(text);
                case "ja": return NormalizeJapaneseNumbers(text);
                case "zh": return NormalizeChinese(text);
                default: return Blanks.Replace(text, " ");
            }
        }
    }
}
