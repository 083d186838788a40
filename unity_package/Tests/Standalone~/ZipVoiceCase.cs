// Golden traces of kind "zipvoice" (tests/unity/zipvoice_golden.py): Core's ZipVoicePipeline on the
// recorded graph calls of runtime_ref's ZipVoicePipeline.synthesize — same ids, same graph sequence
// and input bytes (text encoder tokens, text/speech conditions, noise, time grid, guidance, Vocos
// features), same PCM bytes, nothing leaked — and, for Japanese accent bundles, the accent-kana
// reader on every case of the trace's kana table.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using SentisTts.Core;
using SentisTts.Core.ZipVoice;

namespace SentisTts.Tests
{
    public static class ZipVoiceCase
    {
        static void Check(bool ok, string what) { if (!ok) throw new Exception(what); }

        static float[] Floats(JsonObject entry)
        {
            var b = Convert.FromBase64String(entry.Str("data"));
            var f = new float[b.Length / 4];
            Buffer.BlockCopy(b, 0, f, 0, b.Length);
            return f;
        }

        static string Join(IEnumerable<string> xs) { return string.Join(" ", new List<string>(xs).ToArray()); }

        public static void Run(JsonObject trace, string golden)
        {
            var p = trace.Obj("params");
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText(), "zipvoice trace");
            Check(ModelFamilies.Of(m) == ModelFamily.ZipVoice, "trace manifest family");
            var dir = Path.Combine(golden, p.Str("text_dir"));
            var files = p.Obj("text_files");
            var kanaFile = files.Str("kana_table");
            var tok = ZipVoiceTokenizer.FromStrings(m.Component("text"), File.ReadAllText(Path.Combine(dir, files.Str("tokens")), Encoding.UTF8),
                                                    kanaFile == null ? null : File.ReadAllText(Path.Combine(dir, kanaFile), Encoding.UTF8));
            var ids = tok.Ids(p.Str("text"));
            var want = Json.IntArray(p.Get("ids"));
            Check(string.Join(",", ids.ConvertAll(x => x.ToString()).ToArray()) == string.Join(",", Array.ConvertAll(want, x => x.ToString())),
                  "text ids differ: [" + string.Join(",", ids.ConvertAll(x => x.ToString()).ToArray()) + "]");

            var pv = p.Obj("voice");
            var feats = pv.Obj("prompt_features");
            var shape = Json.IntArray(feats.Get("shape"));
            var voice = new ZipVoiceVoice { Name = "golden", PromptText = pv.Str("prompt_text"), PromptFeatures = Floats(feats),
                                            PromptFrames = shape[0], FeatDim = shape[1], PromptIds = Json.IntArray(pv.Get("prompt_ids")),
                                            PromptRms = Floats(pv.Obj("prompt_rms"))[0] };
            var runner = new ReplayRunner(trace);
            var pipe = new ZipVoicePipeline(m, runner, tok);
            var noise = new List<float[]>();
            foreach (JsonObject e in p.Arr("noise")) noise.Add(Floats(e));
            var req = new ZipVoiceRequest { Text = p.Str("text"), Voice = voice, Seed = p.Int("seed"), Speed = (float)p.Double("speed"), Noise = noise };
            Check(pipe.TextBudget(voice.PromptFrames, voice.PromptIds.Length, req.Speed) == p.Int("budget"), "text budget differs");
            float[] pcm;
            using (var s = pipe.Begin(req))
            {
                var pieces = new List<string>();
                foreach (var x in p.Arr("pieces")) pieces.Add((string)x);
                Check(string.Join("|", s.Pieces.ToArray()) == string.Join("|", pieces.ToArray()), "pieces " + string.Join("|", s.Pieces.ToArray()));
                int ticks = 0;
                while (!s.Tick()) Check(++ticks < 10 * pieces.Count, "the session does not finish");
                Check(s.Frames == p.Int("n_frames"), "frames " + s.Frames + ", trace " + p.Int("n_frames"));
                pcm = s.Audio;
            }
            Check(runner.Failures.Count == 0, string.Join("\n", runner.Failures.ToArray()));
            Check(runner.Next == runner.CallCount, "Core made " + runner.Next + " graph calls, the trace has " + runner.CallCount);
            Check(runner.Leaked == 0, runner.Leaked + " graph outputs not disposed");
            var res = trace.Obj("result");
            Check(pcm.Length == res.Int("samples"), "pcm length " + pcm.Length + ", trace " + res.Int("samples"));
            Check(new HostTensor(new[] { pcm.Length }, pcm).Sha256() == res.Obj("pcm").Str("sha256"), "pcm bytes differ");

            var cases = trace.Arr("kana_cases");
            if (cases == null) { Check(tok.Kind == ZipVoiceTokenizer.Simple, "a japanese_accent trace without kana cases"); return; }
            int n = 0;
            foreach (JsonObject c in cases)
            {
                var kana = c.Str("kana");
                if (c.Bool("error"))
                {
                    bool threw = false;
                    try { tok.Kana.Tokens(kana, tok.AccentRule); } catch (SentisTtsException) { threw = true; }
                    Check(threw, "accent kana '" + kana + "' must be refused");
                    continue;
                }
                var got = Join(tok.Kana.Tokens(kana, tok.AccentRule));
                var exp = new List<string>();
                foreach (var x in c.Arr("tokens")) exp.Add((string)x);
                Check(got == Join(exp), "accent kana '" + kana + "': " + got + "\n  want " + Join(exp));
                var cid = string.Join(",", tok.Ids(kana).ConvertAll(x => x.ToString()).ToArray());
                Check(cid == string.Join(",", Array.ConvertAll(Json.IntArray(c.Get("ids")), x => x.ToString())), "accent kana '" + kana + "': ids differ");
                n++;
            }
            Check(n >= 20, "only " + n + " kana cases");
        }
    }
}
