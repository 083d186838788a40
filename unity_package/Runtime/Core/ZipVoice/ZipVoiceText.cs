// ZipVoice text front-ends (mirror of runtime_ref/zipvoice/text.py and kana.py):
//   simple          -> every character (code point) is a token;
//   japanese_accent -> accent kana (kana with ' after the accent nucleus, ’ after a devoiced mora,
//                      phrases separated by space or /, punctuation = pause) -> phonemes with the
//                      pitch marks [H] [L], | and [Q] of the Japanese fork's tokenizer. The Unity
//                      runtime has no OpenJTalk: kanji are not read (write the lines in accent kana;
//                      runtime_ref.zipvoice.kana.to_accent_kana writes them from any text on the host).
// Then tokens.txt lookup, unknown tokens skipped, after the official add_punctuation.
using System;
using System.Collections.Generic;
using System.Text;

namespace SentisTts.Core.ZipVoice
{
    public sealed class ZipVoiceTokenizer
    {
        public const string Simple = "simple", JapaneseAccent = "japanese_accent";
        static readonly string Punctuation = ";:,.!?；：，。！？";  // official infer.py `punctuation`

        public readonly Dictionary<string, int> TokenToId;
        public readonly string Kind, AccentRule;
        public readonly AccentKana Kana;  // japanese_accent only

        public ZipVoiceTokenizer(Dictionary<string, int> tokenToId, string kind, string accentRule, AccentKana kana)
        {
            if (kind != Simple && kind != JapaneseAccent)
                throw new SentisTtsException("unknown ZipVoice tokenizer '" + kind + "' (simple, japanese_accent)");
            if (kind == JapaneseAccent && kana == null)
                throw new SentisTtsException("a japanese_accent bundle needs its kana table (text/kana.tsv; re-export the text component)");
            AccentKana.CheckRule(accentRule);
            TokenToId = tokenToId; Kind = kind; AccentRule = accentRule; Kana = kana;
        }

        /// <summary>From the bundle's text component (tokens.txt text, kana.tsv text or null).</summary>
        public static ZipVoiceTokenizer FromStrings(JsonObject textComponent, string tokensTxt, string kanaTsv)
        {
            var kind = textComponent.Str("tokenizer") ?? Simple;
            var rule = textComponent.Str("accent_rule") ?? AccentKana.DefaultRule;
            return new ZipVoiceTokenizer(ReadTokens(tokensTxt), kind, rule, kanaTsv == null ? null : AccentKana.FromTsv(kanaTsv));
        }

        /// <summary>tokens.txt: `token TAB id` per line.</summary>
        public static Dictionary<string, int> ReadTokens(string text)
        {
            var d = new Dictionary<string, int>();
            foreach (var raw in text.Replace("\r\n", "\n").Split('\n'))
            {
                if (raw.Trim().Length == 0) continue;
                var tab = raw.IndexOf('\t');
                if (tab < 0) throw new SentisTtsException("tokens.txt: line without a tab: " + raw);
                d[raw.Substring(0, tab)] = int.Parse(raw.Substring(tab + 1).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            if (!d.ContainsKey("_")) throw new SentisTtsException("tokens.txt has no pad token '_'");
            return d;
        }

        /// <summary>Official add_punctuation: strip, and end with '.' unless the text ends in punctuation.</summary>
        public static string AddPunctuation(string text)
        {
            text = text.Trim();
            return text.Length > 0 && Punctuation.IndexOf(text[text.Length - 1]) >= 0 ? text : text + ".";
        }

        public List<string> Tokens(string text)
        {
            if (Kind == JapaneseAccent) return Kana.Tokens(text, AccentRule);
            var t = new List<string>();
            for (int i = 0; i < text.Length; i++)
            {
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { t.Add(text.Substring(i, 2)); i++; }
                else t.Add(text[i].ToString());
            }
            return t;
        }

        /// <summary>Text (accent kana for japanese_accent bundles) -> ids, as runtime_ref ZipVoiceFrontend.ids.</summary>
        public List<int> Ids(string text)
        {
            var ids = new List<int>();
            int id;
            foreach (var t in Tokens(AddPunctuation(text))) if (TokenToId.TryGetValue(t, out id)) ids.Add(id);
            return ids;
        }
    }

    /// <summary>Accent kana -> tokens (runtime_ref/zipvoice/kana.py accent_kana_tokens).</summary>
    public sealed class AccentKana
    {
        public const string DefaultRule = "v3";
        public const string High = "[H]", Low = "[L]", Boundary = "|", Question = "[Q]", Pause = "pau";
        const string AccentMarks = "'＇", Devoiced = "’", Separators = " 　/", PauseMarks = "、。,.!?！？;:；：…", Vowels = "aiueo";
        const char LongVowel = 'ー';
        readonly Dictionary<string, string[]> table;

        AccentKana(Dictionary<string, string[]> table) { this.table = table; }

        /// <summary>The bundle's text/kana.tsv: `kana TAB phonemes (space separated)` per line.</summary>
        public static AccentKana FromTsv(string tsv)
        {
            var t = new Dictionary<string, string[]>();
            foreach (var raw in tsv.Replace("\r\n", "\n").Split('\n'))
            {
                if (raw.Length == 0) continue;
                var tab = raw.IndexOf('\t');
                if (tab <= 0) throw new SentisTtsException("kana.tsv: malformed line: " + raw);
                t[raw.Substring(0, tab)] = raw.Substring(tab + 1).Split(' ');
            }
            return new AccentKana(t);
        }

        public static void CheckRule(string rule)
        {
            if (rule != "v1" && rule != "v2" && rule != "v3") throw new SentisTtsException("unknown accent rule '" + rule + "' (v1, v2, v3)");
        }

        /// <summary>"H" or "L" for a mora at A1 (relative to the nucleus), A2 (1-based position): the fork's rules.</summary>
        public static bool IsHigh(int a1, int a2, string rule)
        {
            switch (rule)
            {
                case "v1": return a1 < 0;
                case "v2": return a1 <= 0;
                default: return !(a2 == 1 && a1 < 0) && a1 <= 0;
            }
        }

        static string ToKatakana(string s)
        {
            var sb = new StringBuilder(s.Length);
            foreach (var ch in s) sb.Append((ch >= '\u3041' && ch <= '\u3096') || ch == 'ゝ' || ch == 'ゞ' ? (char)(ch + 0x60) : ch);
            return sb.ToString();
        }

        sealed class Mora { public string[] Phones; public bool Devoiced; }
        sealed class Phrase { public List<Mora> Morae; public int Accent; }  // null Morae = pause

        List<Phrase> Phrases(string text)
        {
            var s = ToKatakana(text);
            var items = new List<Phrase>();
            var morae = new List<Mora>();
            int accent = 0;
            Action close = () =>
            {
                if (morae.Count > 0) items.Add(new Phrase { Morae = morae, Accent = accent });
                morae = new List<Mora>(); accent = 0;
            };
            int i = 0;
            while (i < s.Length)
            {
                char ch = s[i];
                if (Separators.IndexOf(ch) >= 0) { close(); i++; }
                else if (PauseMarks.IndexOf(ch) >= 0)
                {
                    close();
                    if (items.Count > 0 && items[items.Count - 1].Morae != null) items.Add(new Phrase());
                    i++;
                }
                else if (AccentMarks.IndexOf(ch) >= 0)
                {
                    if (morae.Count == 0) throw new SentisTtsException("accent kana: the accent mark at " + i + " follows no mora in '" + text + "'");
                    accent = morae.Count; i++;
                }
                else if (Devoiced.IndexOf(ch) >= 0)
                {
                    if (morae.Count == 0) throw new SentisTtsException("accent kana: the devoicing mark at " + i + " follows no mora in '" + text + "'");
                    morae[morae.Count - 1].Devoiced = true; i++;
                }
                else if (ch == LongVowel)
                {
                    string prev = null;
                    if (morae.Count > 0)
                    {
                        var ph = morae[morae.Count - 1].Phones;
                        for (int k = ph.Length - 1; k >= 0 && prev == null; k--) if (Vowels.IndexOf(ph[k].ToLowerInvariant()) >= 0 && ph[k].Length == 1) prev = ph[k].ToLowerInvariant();
                    }
                    if (prev == null) throw new SentisTtsException("accent kana: ー at " + i + " follows no vowel in '" + text + "'");
                    morae.Add(new Mora { Phones = new[] { prev } }); i++;
                }
                else
                {
                    string[] ph;
                    if (i + 1 < s.Length && table.TryGetValue(s.Substring(i, 2), out ph)) { morae.Add(new Mora { Phones = ph }); i += 2; }
                    else if (table.TryGetValue(s.Substring(i, 1), out ph)) { morae.Add(new Mora { Phones = ph }); i++; }
                    else throw new SentisTtsException("accent kana: '" + ch + "' at " + i + " is not kana, an accent mark (' ’), a phrase separator " +
                                                      "(space /) or punctuation, in '" + text + "' (write kanji and latin letters in kana)");
                }
            }
            close();
            while (items.Count > 0 && items[items.Count - 1].Morae == null) items.RemoveAt(items.Count - 1);
            while (items.Count > 0 && items[0].Morae == null) items.RemoveAt(0);
            return items;
        }

        public List<string> Tokens(string text, string rule = DefaultRule)
        {
            var o = new List<string>();
            string key = null;
            int level = -1;  // -1 none, 0 low, 1 high
            foreach (var item in Phrases(text))
            {
                if (item.Morae == null) { o.Add(Pause); key = null; level = -1; continue; }
                int n = item.Morae.Count, acc = item.Accent > 0 ? item.Accent : n;
                var phraseKey = n + "_" + acc;
                if (key != null && phraseKey != key) { o.Add(Boundary); level = -1; }  // the level carries over an unmarked boundary (as the fork)
                for (int a2 = 1; a2 <= n; a2++)
                {
                    int lv = IsHigh(a2 - acc, a2, rule) ? 1 : 0;
                    if (lv != level) { o.Add(lv == 1 ? High : Low); level = lv; }
                    var m = item.Morae[a2 - 1];
                    foreach (var p in m.Phones) o.Add(m.Devoiced && p.Length == 1 && Vowels.IndexOf(p) >= 0 ? p.ToUpperInvariant() : p);
                }
                key = phraseKey;
            }
            var end = text.TrimEnd();
            if (end.EndsWith("?") || end.EndsWith("？")) o.Add(Question);
            return o;
        }
    }
}
