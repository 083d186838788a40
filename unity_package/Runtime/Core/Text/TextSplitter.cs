// Splitting text into pieces that each fit a token budget (never truncating), mirroring
// runtime_ref/text/split.py (held to it by the text_frontend golden trace): cut at sentence ends,
// then clause marks, then blanks, then between characters of scripts without blanks; control tags
// ([breath], <|endofprompt|>, <strong>) are never cut; sentences are packed greedily to about
// `target` tokens (official 60..80, a last piece under 20 tokens joins the previous one), never over
// `maxTokens`. A unit that cannot be cut small enough throws: nothing is dropped silently.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SentisTts.Core.Text
{
    public static class TextSplitter
    {
        const string SentenceEnds = "。？！；：…!?;:\n";
        const string ClauseMarks = "，、,－—";
        const string Closing = "\"'”’」』)）]】";
        static readonly Regex Tag = new Regex(@"<\|[^|<>\s]{1,40}\|>|\[[A-Za-z_\-]{1,40}\]|</?[A-Za-z]{1,20}>");
        static readonly Regex NoSpaceScript = new Regex("^[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef]");

        /// <summary>Code points, except that control tags stay whole.</summary>
        static List<string> Atoms(string text)
        {
            var r = new List<string>();
            int pos = 0;
            foreach (Match m in Tag.Matches(text))
            {
                AddCodePoints(text, pos, m.Index, r);
                r.Add(m.Value);
                pos = m.Index + m.Length;
            }
            AddCodePoints(text, pos, text.Length, r);
            return r;
        }

        static void AddCodePoints(string s, int from, int to, List<string> r)
        {
            for (int i = from; i < to; i++)
            {
                if (char.IsHighSurrogate(s[i]) && i + 1 < to && char.IsLowSurrogate(s[i + 1])) { r.Add(s.Substring(i, 2)); i++; }
                else r.Add(s[i].ToString());
            }
        }

        static bool In(string atom, string set) { return set.Contains(atom); }  // Python `atom in set` (atoms are never empty)
        static bool IsSpace(string atom) { return atom.Length == 1 && char.IsWhiteSpace(atom[0]); }

        static List<string> CutAfter(string text, Func<List<string>, int, bool> isCut)
        {
            var atoms = Atoms(text);
            var pieces = new List<string>();
            var cur = new StringBuilder();
            for (int i = 0; i < atoms.Count; i++)
            {
                cur.Append(atoms[i]);
                if (isCut(atoms, i))
                {
                    while (i + 1 < atoms.Count && In(atoms[i + 1], Closing)) { i++; cur.Append(atoms[i]); }
                    pieces.Add(cur.ToString());
                    cur.Length = 0;
                }
            }
            if (cur.Length > 0) pieces.Add(cur.ToString());
            return pieces;
        }

        /// <summary>Sentences with their end punctuation ('.' ends one only before a blank, a closing mark
        /// or the end; a run such as '?!' stays together).</summary>
        public static List<string> SplitSentences(string text)
        {
            return CutAfter(text, (a, i) =>
            {
                var c = a[i];
                if (i + 1 < a.Count && In(a[i + 1], SentenceEnds) && a[i + 1] != "\n" && In(c, SentenceEnds + ".")) return false;
                if (c == ".") return i + 1 == a.Count || IsSpace(a[i + 1]) || In(a[i + 1], Closing);
                return In(c, SentenceEnds);
            });
        }

        static List<string> SplitClauses(string t) { return CutAfter(t, (a, i) => In(a[i], ClauseMarks)); }
        static List<string> SplitBlanks(string t) { return CutAfter(t, (a, i) => IsSpace(a[i]) && i + 1 < a.Count && !IsSpace(a[i + 1])); }
        static List<string> SplitChars(string t)
        {
            return CutAfter(t, (a, i) => i + 1 < a.Count && (NoSpaceScript.IsMatch(a[i]) || NoSpaceScript.IsMatch(a[i + 1])));
        }

        /// <summary>Punctuation, symbols, separators and control characters only (Unicode categories P*, S*, Z*, C*).</summary>
        public static bool IsOnlyPunctuation(string text)
        {
            for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
            {
                switch (CharUnicodeInfo.GetUnicodeCategory(text, i))
                {
                    case UnicodeCategory.ConnectorPunctuation: case UnicodeCategory.DashPunctuation: case UnicodeCategory.OpenPunctuation:
                    case UnicodeCategory.ClosePunctuation: case UnicodeCategory.InitialQuotePunctuation: case UnicodeCategory.FinalQuotePunctuation:
                    case UnicodeCategory.OtherPunctuation: case UnicodeCategory.MathSymbol: case UnicodeCategory.CurrencySymbol:
                    case UnicodeCategory.ModifierSymbol: case UnicodeCategory.OtherSymbol: case UnicodeCategory.SpaceSeparator:
                    case UnicodeCategory.LineSeparator: case UnicodeCategory.ParagraphSeparator: case UnicodeCategory.Control:
                    case UnicodeCategory.Format: case UnicodeCategory.Surrogate: case UnicodeCategory.PrivateUse: case UnicodeCategory.OtherNotAssigned:
                        continue;
                    default: return false;
                }
            }
            return true;
        }

        static List<string> Pack(List<string> units, Func<string, int> count, int maxTokens, int target, int minTokens)
        {
            var outp = new List<string>();
            string cur = "";
            foreach (var u in units)
            {
                if (cur.Length > 0)
                {
                    int nCur = count(cur), nNew = count(cur + u);
                    if (nNew > maxTokens || (nNew > target && nCur >= minTokens)) { outp.Add(cur); cur = ""; }
                }
                cur += u;
            }
            if (cur.Length > 0) outp.Add(cur);
            return outp;
        }

        static List<string> Fit(string unit, Func<string, int> count, int maxTokens, int level = 0)
        {
            int n = count(unit);
            if (n <= maxTokens) return new List<string> { unit };
            var splitters = new Func<string, List<string>>[] { SplitClauses, SplitBlanks, SplitChars };
            for (int lvl = level; lvl < splitters.Length; lvl++)
            {
                var parts = splitters[lvl](unit);
                if (parts.Count > 1)
                {
                    var outp = new List<string>();
                    foreach (var p in parts) outp.AddRange(Fit(p, count, maxTokens, lvl + 1));
                    return Pack(outp, count, maxTokens, maxTokens, 0);
                }
            }
            var shown = unit.Trim();
            if (shown.Length > 40) shown = shown.Substring(0, 37) + "...";
            throw new SentisTtsException("cannot split '" + shown + "' (" + n + " tokens) to fit the " + maxTokens + "-token limit of this bundle; " +
                                         "add blanks or punctuation to the text, or export with a larger LLM cache / flow length");
        }

        /// <summary>runtime_ref split_text: pieces each with count(piece) &lt;= maxTokens, edges stripped,
        /// punctuation-only pieces dropped; defaults target 80, minimum 60, merge under 20 tokens.</summary>
        public static List<string> Split(string text, Func<string, int> count, int maxTokens, int targetTokens = 0, int minTokens = -1, int mergeTokens = 20)
        {
            if (maxTokens < 1) throw new SentisTtsException("the text token budget is " + maxTokens + "; the bundle leaves no room for text (prompt too long?)");
            int target = Math.Min(targetTokens > 0 ? targetTokens : 80, maxTokens);
            int low = Math.Min(minTokens >= 0 ? minTokens : 60, target);
            var units = new List<string>();
            foreach (var s in SplitSentences(text))
            {
                if (units.Count > 0 && IsOnlyPunctuation(s) && count(units[units.Count - 1] + s) <= maxTokens) { units[units.Count - 1] += s; continue; }
                units.AddRange(Fit(s, count, maxTokens));
            }
            var pieces = new List<string>();
            foreach (var p in Pack(units, count, maxTokens, target, low)) if (!IsOnlyPunctuation(p)) pieces.Add(p);
            int k = pieces.Count;
            if (k > 1 && count(pieces[k - 1]) < mergeTokens && count(pieces[k - 2] + pieces[k - 1]) <= maxTokens)
            {
                pieces[k - 2] = pieces[k - 2] + pieces[k - 1];
                pieces.RemoveAt(k - 1);
            }
            var result = new List<string>();
            foreach (var p in pieces) { var t = p.Trim(); if (t.Length > 0 && !IsOnlyPunctuation(t)) result.Add(t); }
            return result;
        }

        /// <summary>runtime_ref text_token_budget: the most text tokens per piece such that the LLM cache and
        /// the largest flow bucket hold the worst case (speechPerText speech tokens per text token).</summary>
        public static int TokenBudget(int maxCacheLen, int maxFlowTokens, int promptTextTokens, int promptSpeechTokens, double speechPerText)
        {
            double llmRoom = (maxCacheLen - 2 - promptTextTokens - promptSpeechTokens) / (1.0 + speechPerText);
            double flowRoom = (maxFlowTokens - promptSpeechTokens) / speechPerText;
            int budget = (int)Math.Min(llmRoom, flowRoom);
            if (budget < 1)
                throw new SentisTtsException("the prompt (" + promptTextTokens + " text + " + promptSpeechTokens + " speech tokens) leaves no room for text in " +
                                             "this bundle (LLM cache " + maxCacheLen + ", flow " + maxFlowTokens + " tokens); use a shorter prompt or a larger export");
            return budget;
        }
    }

    /// <summary>normalise -> split to the budget -> encode (runtime_ref TextFrontend.pieces with
    /// japanese_reading=False: Japanese must come as kana or with readings baked at build time).</summary>
    public static class TextFrontend
    {
        public static List<string> Pieces(Qwen2Tokenizer tok, string text, int maxTokens, string lang = null)
        {
            if (text.Trim().Length == 0) throw new SentisTtsException("the text to synthesize is empty");
            bool control = TextNormalizer.HasControlTokens(text);
            var norm = control ? text : TextNormalizer.Normalize(text, lang ?? TextNormalizer.DetectLanguage(text));
            Func<string, int> count = s => tok.Encode(s).Count;
            var parts = control && count(norm) <= maxTokens ? new List<string> { norm } : TextSplitter.Split(norm, count, maxTokens);
            if (parts.Count == 0)
                throw new SentisTtsException("nothing to synthesize in '" + (text.Length > 40 ? text.Substring(0, 40) : text) + "' (only punctuation or blanks)");
            return parts;
        }
    }
}
