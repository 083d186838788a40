// Standalone test program of the Core assembly (no Unity, no NUnit): compiled with Mono's mcs by
// tests/unity/test_csharp_core.py. Usage: CoreTests.exe <golden dir> [<scratch dir>]
// The last line of the output is "N passed, M failed".
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using SentisTts.Core;
using SentisTts.Core.Audio;
using SentisTts.Core.Flow;
using SentisTts.Core.Llm;
using SentisTts.Core.Pipeline;
using SentisTts.Core.Sampling;
using SentisTts.Core.Text;

namespace SentisTts.Tests
{
    public static class CoreTestMain
    {
        static int passed, failed;
        static string golden, scratch;

        static void Check(bool ok, string what)
        {
            if (!ok) throw new Exception(what);
        }

        static void Run(string name, Action test)
        {
            try
            {
                test();
                passed++;
                Console.WriteLine("PASS " + name);
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine("FAIL " + name + ": " + e.Message.Replace("\n", "\n    "));
            }
        }

        static JsonObject Load(string file) { return Json.ParseObject(File.ReadAllText(Path.Combine(golden, file), Encoding.UTF8)); }

        static float[] FloatsB64(string b64)
        {
            var b = Convert.FromBase64String(b64);
            var f = new float[b.Length / 4];
            Buffer.BlockCopy(b, 0, f, 0, b.Length);
            return f;
        }

        static string Sha(float[] x, int[] shape) { return new HostTensor(shape, x).Sha256(); }

        public static int Main(string[] args)
        {
            if (args.Length < 1) { Console.WriteLine("usage: CoreTests.exe <golden dir> [<scratch dir>]"); return 2; }
            golden = args[0];
            scratch = args.Length > 1 ? args[1] : Path.GetTempPath();
            var files = new List<string>(Directory.GetFiles(golden, "*.json"));
            files.Sort(StringComparer.Ordinal);

            Run("json: parser", TestJson);
            Run("manifest: parse + hash verification", TestManifestVerify);
            Run("tokenizer: pre-tokenizer pieces", TestPretokenizer);
            Run("wav: pcm16 round trip", TestWav);
            Run("npz: voice file", TestNpz);
            Run("llm: capacity error", TestCapacity);
            Run("hift: chunk plan", TestPlan);
            Run("audio: ring buffer + resampler", TestRing);
            Run("pipeline: streaming schedule, modes, 100 utterances without leaks", TestPipeline);
            Run("pipeline: family choice (SpeechPipeline.ForBundle); a zipvoice bundle refused in one line", TestFamilyChoice);
            Run("flow: bucket choice, masks, Euler steps on the runner, new frames only", TestFlowStage);
            foreach (var f in files)
            {
                var trace = Json.ParseObject(File.ReadAllText(f, Encoding.UTF8));
                var kind = trace.Str("kind");
                var label = Path.GetFileName(f);
                Action t;
                switch (kind)
                {
                    case "tokenizer": t = () => TestTokenizerGolden(trace); break;
                    case "sampler": t = () => TestSamplerGolden(trace); break;
                    case "llm_generate": t = () => TestLlmTrace(trace); break;
                    case "hift_mel2wav": t = () => TestHiftMel2Wav(trace); break;
                    case "hift_stream": t = () => TestHiftStream(trace); break;
                    case "pipeline": t = () => TestPipelineTrace(trace); break;
                    case "pipeline_bistream": t = () => TestBistreamTrace(trace); break;
                    case "cv3_pipeline": t = () => TestPipelineTrace(trace); break;
                    case "cv3_pipeline_bistream": t = () => TestBistreamTrace(trace); break;
                    case "text_frontend": t = () => TestTextFrontend(trace); break;
                    case "voice_features": t = () => TestVoiceFeatures(trace); break;
                    case "voice_bake": t = () => TestVoiceBake(trace); break;
                    case "zipvoice": t = () => ZipVoiceCase.Run(trace, golden); break;
                    case "voice": continue;
                    default: t = () => { throw new Exception("unknown trace kind '" + kind + "' (add it to the scenario table)"); }; break;
                }
                Run("golden " + label + " (" + kind + ")", t);
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 ? 0 : 1;
        }

        // -- unit tests ---------------------------------------------------------------------------
        static void TestJson()
        {
            var o = Json.ParseObject("{\"a\": [1, -2.5e3, \"x\\u00e9\\n\"], \"b\": {\"c\": true, \"d\": null}, \"e\": NaN}");
            Check(((JsonNumber)o.Arr("a")[0]).AsLong() == 1, "int");
            Check(((JsonNumber)o.Arr("a")[1]).AsDouble() == -2500.0, "float");
            Check((string)o.Arr("a")[2] == "x\u00e9\n", "escapes");
            Check(o.Obj("b").Bool("c") && o.Obj("b").Get("d") == null, "nested");
            Check(double.IsNaN(((JsonNumber)o.Get("e")).AsDouble()), "NaN");
            Check(o.Order[0] == "a" && o.Order[2] == "e", "key order");
            bool threw = false;
            try { Json.Parse("{\"a\": 1,}"); } catch (SentisTtsException) { threw = true; }
            Check(threw, "trailing comma must be rejected");
        }

        static void TestManifestVerify()
        {
            var dir = Path.Combine(scratch, "bundle_ok");
            if (!Directory.Exists(dir)) { Console.WriteLine("  (no scratch bundle; parse-only)"); }
            foreach (var f in new[] { "llm_generate_sft.json", "hift_stream.json" })
            {
                var m = BundleManifest.Parse(Load(f).Obj("manifest").ToJsonText(), f);
                Check(m.Graphs.Count > 0, f + ": graphs");
            }
            var llm = BundleManifest.Parse(Load("llm_generate_sft.json").Obj("manifest").ToJsonText());
            var step = llm.Graph(llm.Component("llm").Obj("graphs").Str("step"));
            Check(step.Input("inputs_embeds").Shape[1] == -1 && step.Input("inputs_embeds").DimNames[1] == "query_len", "symbolic dim");
            Check(step.Input("position").DType == DType.Int32, "dtype");
            if (Directory.Exists(dir))
            {
                var ok = BundleManifest.Load(dir);
                var p = ok.Verify(dir);
                Check(p.Count == 0, "valid bundle reported: " + (p.Count > 0 ? p[0] : ""));
                var bad = Path.Combine(scratch, "bundle_bad");
                var pb = BundleManifest.Load(bad).Verify(bad);
                Check(pb.Count == 2, "corrupt bundle: expected 2 problems, got " + pb.Count + ": " + string.Join("; ", pb.ToArray()));
                Check(pb[0].Contains("sha256") || pb[1].Contains("sha256"), "hash mismatch reported");
                Check(pb[0].Contains("missing") || pb[1].Contains("missing"), "missing file reported");
                bool threw = false;
                try { BundleManifest.Parse("{\"schema_version\": 99, \"graphs\": {}}"); } catch (SentisTtsException e) { threw = e.Message.Contains("schema_version 99"); }
                Check(threw, "unsupported schema must be rejected with a one-line message");
            }
        }

        static void TestPretokenizer()
        {
            var pieces = Pretokenizer.Split("Hello world's  12 \u00e9t\u00e9!!\n\n  x");
            var expect = new[] { "Hello", " world", "'s", " ", " ", "1", "2", " \u00e9t\u00e9", "!!\n\n", " ", " x" };
            Check(string.Join("|", pieces.ToArray()) == string.Join("|", expect), "pieces: " + string.Join("|", pieces.ToArray()));
            Check(string.Join("", Pretokenizer.Split("\ud83d\ude00 emoji \ud83d\ude00").ToArray()) == "\ud83d\ude00 emoji \ud83d\ude00", "surrogates kept");
        }

        static void TestWav()
        {
            var x = new float[] { 0f, 0.5f, -0.5f, 1.2f, -1.2f, 0.25f };
            var bytes = Pcm.WavBytes(x, 24000);
            Check(bytes.Length == 44 + 2 * x.Length, "wav size");
            int sr, ch;
            var y = Pcm.ReadWav(bytes, out sr, out ch);
            Check(sr == 24000 && ch == 1 && y.Length == x.Length, "header");
            for (int i = 0; i < x.Length; i++) Check(Math.Abs(y[i] - Math.Max(-1f, Math.Min(1f, x[i]))) < 1e-4, "sample " + i);
            var fl = Pcm.ReadWav(Pcm.WavBytes(x, 16000, 1, true), out sr, out ch);
            for (int i = 0; i < x.Length; i++) Check(fl[i] == x[i], "float32 wav sample " + i);
        }

        static void TestNpz()
        {
            var spec = Load("voice_tiny.json").Obj("expect");
            Voice v;
            using (var s = File.OpenRead(Path.Combine(golden, "voice_tiny.npz"))) v = Voice.FromNpz("tiny", s);
            Check(Sha(v.Embedding, new[] { v.Embedding.Length }) == spec.Str("embedding_sha256"), "embedding bytes");
            Check(string.Join(",", Array.ConvertAll(v.SpeechTokens, t => t.ToString())) == string.Join(",", Array.ConvertAll(Json.IntArray(spec.Get("speech_tokens")), t => t.ToString())), "speech tokens");
            Check(v.PromptMelFrames == spec.Int("prompt_mel_frames") && v.PromptMelChannels == spec.Int("prompt_mel_channels"), "mel shape");
            Check(Sha(v.PromptMel, new[] { v.PromptMel.Length }) == spec.Str("prompt_mel_sha256"), "mel bytes");
            Check(v.PromptText == spec.Str("prompt_text"), "prompt text '" + v.PromptText + "'");
            Check(string.Join(",", Array.ConvertAll(v.PromptTextIds, t => t.ToString())) == string.Join(",", Array.ConvertAll(Json.IntArray(spec.Get("prompt_text_ids")), t => t.ToString())), "prompt text ids");
        }

        static void TestCapacity()
        {
            var trace = Load("llm_generate_sft.json");
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            var gen = new LlmGenerator(m, new ReplayRunner(trace));
            int fit = gen.MaxTextTokens(0, 0);
            Check(gen.NeededSlots(fit, 0, 0) <= gen.Capacity && gen.NeededSlots(fit + 1, 0, 0) > gen.Capacity, "max text tokens");
            bool threw = false;
            try { gen.CheckCapacity(fit + 1, 0, 0); }
            catch (LlmCapacityException e) { threw = e.Message.Contains("at most " + fit + " text tokens fit"); }
            Check(threw, "capacity error names the limit");
        }

        static void TestRing()
        {
            var r = new AudioRingBuffer(10);
            var x = new float[] { 1, 2, 3, 4, 5, 6, 7 };
            Check(r.Write(x, 0, 7) == 7 && r.Count == 7, "write");
            var y = new float[5];
            Check(r.Read(y, 0, 5) == 5 && y[0] == 1 && y[4] == 5, "read");
            Check(r.Write(x, 0, 7) == 7 && r.Count == 9, "wrap write");
            Check(r.Write(x, 0, 7) == 1 && r.Free == 0, "full");
            var z = new float[12];
            Check(r.Read(z, 0, 12) == 10 && z[0] == 6 && z[1] == 7 && z[2] == 1 && z[8] == 7 && z[9] == 1, "wrap read");
            // resampler: chunked == whole, constant stays constant, length ratio
            var sig = new float[2400];
            for (int i = 0; i < sig.Length; i++) sig[i] = (float)Math.Sin(i * 0.01);
            var whole = new LinearResampler(24000, 48000).Process(sig);
            var rs = new LinearResampler(24000, 48000);
            var parts = new List<float>();
            for (int s = 0; s < sig.Length; s += 333)
            {
                var chunk = new float[Math.Min(333, sig.Length - s)];
                Array.Copy(sig, s, chunk, 0, chunk.Length);
                parts.AddRange(rs.Process(chunk));
            }
            Check(Math.Abs(whole.Length - 4799) <= 1 && parts.Count == whole.Length, "lengths " + whole.Length + " " + parts.Count);
            for (int i = 0; i < whole.Length; i++) Check(Math.Abs(whole[i] - parts[i]) < 1e-5, "chunked differs at " + i);
            for (int i = 0; i < whole.Length; i += 2) Check(whole[i] == sig[i / 2], "even outputs are the input samples");
            var down = new LinearResampler(24000, 44100).Process(new float[] { 0.25f, 0.25f, 0.25f, 0.25f });
            foreach (var v in down) Check(Math.Abs(v - 0.25f) < 1e-7, "constant");
        }

        static BundleManifest CombinedManifest()
        {
            var a = Load("llm_generate_sft.json").Obj("manifest");
            var b = Load("hift_stream.json").Obj("manifest");
            foreach (var k in b.Obj("graphs").Order) a.Obj("graphs").Add(k, b.Obj("graphs")[k]);
            foreach (var k in b.Obj("components").Order) a.Obj("components").Add(k, b.Obj("components")[k]);
            var text = Json.ParseObject("{\"endofprompt_id\": 509}");
            a.Obj("components").Add("text", text);
            return BundleManifest.Parse(a.ToJsonText());
        }

        static void TestPipeline()
        {
            var m = CombinedManifest();
            var tok = Qwen2Tokenizer.FromDirectory(Path.Combine(golden, "tokenizer_tiny"));
            var voice = new Voice { Name = "v", PromptText = "A tiny text.", SpeechTokens = new[] { 5, 6, 7 }, Embedding = new float[192],
                                    PromptMel = new float[6 * 80], PromptMelFrames = 6, PromptMelChannels = 80 };
            foreach (var streaming in new[] { false, true })
            {
                var runner = new FakeRunner(m);
                var flow = new FakeFlow();
                var p = new TtsPipeline(m, runner, tok, flow);
                var pieces = new List<float[]>();
                var req = new SynthesisRequest { Text = "Hello, this is a test of the streaming schedule.", Voice = voice, Streaming = streaming,
                                                 MaxNewTokens = 60, Seed = 3 };
                p.MaxHop = 100;
                var g = p.Synthesize(req, pieces.Add);
                Check(g.Tokens.Count == 60, "tokens " + g.Tokens.Count + " " + g.StopReason);
                int total = 0;
                foreach (var x in pieces) total += x.Length;
                Check(total == p.Hift.Hop * p.TokenMelRatio * g.Tokens.Count, (streaming ? "streaming" : "whole") + ": " + total + " samples for " + g.Tokens.Count + " tokens");
                if (streaming)
                {
                    // runtime_ref schedule: first hop 25 padded by 22 (prompt 3 tokens -> 25) + 3 look-ahead,
                    // then hop 50 (doubled) would need 100 tokens, so the rest comes with finalize
                    Check(string.Join(",", flow.Seen.ToArray()) == "50S,60F", "flow calls on " + string.Join(",", flow.Seen.ToArray()) + " tokens");
                    Check(pieces.Count == 2, "streaming pieces " + pieces.Count);
                    Check(pieces[0].Length == 47 * 2 * 480 - 3840, "first piece holds back the cross-fade samples");
                }
                Check(runner.Leaked == 0, runner.Leaked + " values leaked");
                if (!streaming) Check(string.Join(",", flow.Seen.ToArray()) == "60F", "whole-utterance flow call");
            }
            // prompt assembly per mode
            var p2 = new TtsPipeline(m, new FakeRunner(m), tok, new FakeFlow());
            List<int> t, pt, ps;
            p2.AssemblePrompt(new SynthesisRequest { Text = "Hi.", Voice = voice, Mode = SynthesisMode.ZeroShot }, out t, out pt, out ps);
            Check(pt.Count == tok.Encode("A tiny text.").Count && ps.Count == 3, "zero-shot prompt");
            p2.AssemblePrompt(new SynthesisRequest { Text = "Hi.", Voice = voice, Mode = SynthesisMode.CrossLingual }, out t, out pt, out ps);
            Check(pt.Count == 0 && ps.Count == 0, "cross-lingual prompt");
            p2.AssemblePrompt(new SynthesisRequest { Text = "Hi.", Mode = SynthesisMode.Instruct, InstructText = "Speak softly." }, out t, out pt, out ps);
            Check(pt[pt.Count - 1] == 509 && ps.Count == 0, "instruct prompt ends with <|endofprompt|>");
            // 100 utterances with cancellations: nothing leaks
            var r100 = new FakeRunner(m);
            var p3 = new TtsPipeline(m, r100, tok, new FakeFlow());
            for (int u = 0; u < 100; u++)
            {
                int steps = 0;
                var req = new SynthesisRequest { Text = "Short line " + u + ".", Voice = voice, Streaming = u % 2 == 0, MaxNewTokens = 8 + u % 5, Seed = u };
                p3.Synthesize(req, x => { }, () => u % 7 == 0 && ++steps > 3);
            }
            Check(r100.Leaked == 0, r100.Leaked + " values leaked over 100 utterances");
            // long stream: hops 47 (25 + pad), 50, 100, 100 ... capped at MaxHop
            var r4 = new FakeRunner(m);
            var f4 = new FakeFlow();
            var p4 = new TtsPipeline(m, r4, tok, f4);
            var got = new List<float[]>();
            var g4 = p4.Synthesize(new SynthesisRequest { Text = "Hello, this is a test of the streaming schedule.", Voice = voice, Streaming = true,
                                                          MaxNewTokens = 260, Seed = 3 }, got.Add);
            Check(g4.Tokens.Count == 260, "260 tokens");
            Check(string.Join(",", f4.Seen.ToArray()) == "50S,100S,200S,260F", "long stream flow calls " + string.Join(",", f4.Seen.ToArray()));
            int tot = 0; foreach (var x in got) tot += x.Length;
            Check(tot == 260 * 2 * 480 && r4.Leaked == 0, "long stream samples " + tot);
        }

        /// <summary>What CosyVoiceSpeaker builds: the pipeline of the manifest's family; a zipvoice bundle
        /// fails before any graph with a line naming ZipVoiceSpeaker.</summary>
        static void TestFamilyChoice()
        {
            var cv2 = Load("pipeline_stream_zero_shot.json");
            var cv3 = Load("cv3_pipeline_stream_zero_shot.json");
            foreach (var t in new[] { cv2, cv3 })
            {
                var c = new PipelineCase(t, golden);
                var runner = new ReplayRunner(t);
                var p = SpeechPipeline.ForBundle(c.Manifest, runner, c.Tokenizer, new FlowStage(c.Manifest, runner, c.FlowNoise));
                Check(t == cv3 ? p is CosyVoice3Pipeline : p is TtsPipeline, "ForBundle built " + p.GetType().Name + " for " + c.Manifest.Family);
                Check(p.Family == ModelFamilies.Of(c.Manifest) && runner.Next == 0, "family of " + p.GetType().Name + ", " + runner.Next + " graph calls");
            }
            var zv = BundleManifest.Parse(Load("zipvoice_long.json").Obj("manifest").ToJsonText());
            string zmsg = null;
            try { SpeechPipeline.RequireSpeechFamily(zv, "CosyVoiceSpeaker"); }
            catch (SentisTtsException e) { zmsg = e.Message; }
            Check(zmsg != null && zmsg.Contains("zipvoice") && zmsg.Contains("ZipVoiceSpeaker") && !zmsg.Contains("\n"), "zipvoice bundle: " + zmsg);
            zmsg = null;
            try { SpeechPipeline.ForBundle(zv, new FakeRunner(zv), null, null); }
            catch (SentisTtsException e) { zmsg = e.Message; }
            Check(zmsg != null && zmsg.Contains("ZipVoiceSpeaker"), "ForBundle on zipvoice: " + zmsg);
        }

        static void TestFlowStage()
        {
            var sb = new StringBuilder("{\"schema_version\":1,\"constants\":{},\"graphs\":{");
            var comps = new List<string>();
            foreach (var n in new[] { 64, 128 })
            {
                int T = n / 2;
                sb.Append("\"flow_encoder_" + n + "\":{\"file\":\"e.onnx\",\"inputs\":[{\"name\":\"tokens\",\"shape\":[1," + T + "],\"dtype\":\"int32\"},{\"name\":\"token_mask\",\"shape\":[1," + T + "],\"dtype\":\"float32\"},{\"name\":\"conv_mask\",\"shape\":[1," + T + "],\"dtype\":\"float32\"},{\"name\":\"streaming\",\"shape\":[1],\"dtype\":\"float32\"},{\"name\":\"xvec\",\"shape\":[1,192],\"dtype\":\"float32\"}],\"outputs\":[{\"name\":\"mu\",\"shape\":[1,80," + n + "],\"dtype\":\"float32\"},{\"name\":\"spks\",\"shape\":[1,80],\"dtype\":\"float32\"}]},");
                sb.Append("\"flow_step_" + n + "\":{\"file\":\"s.onnx\",\"inputs\":[{\"name\":\"x\",\"shape\":[1,80," + n + "],\"dtype\":\"float32\"},{\"name\":\"t\",\"shape\":[1],\"dtype\":\"float32\"},{\"name\":\"dt\",\"shape\":[1],\"dtype\":\"float32\"},{\"name\":\"mu\",\"shape\":[1,80," + n + "],\"dtype\":\"float32\"},{\"name\":\"cond\",\"shape\":[1,80," + n + "],\"dtype\":\"float32\"},{\"name\":\"spks\",\"shape\":[1,80],\"dtype\":\"float32\"},{\"name\":\"mel_mask\",\"shape\":[1,1," + n + "],\"dtype\":\"float32\"},{\"name\":\"streaming\",\"shape\":[1],\"dtype\":\"float32\"}],\"outputs\":[{\"name\":\"x_next\",\"shape\":[1,80," + n + "],\"dtype\":\"float32\"}]}" + (n == 64 ? "," : ""));
                comps.Add("\"" + n + "\":{\"encoder\":\"flow_encoder_" + n + "\",\"step\":\"flow_step_" + n + "\"}");
            }
            sb.Append("},\"components\":{\"flow\":{\"vocab_size\":6561,\"token_mel_ratio\":2,\"pre_lookahead_len\":3,\"n_mels\":80,\"spk_embed_dim\":192,");
            sb.Append("\"mel_lens\":[128,64],\"t\":[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9],\"dt\":[0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1],\"graphs\":{" + string.Join(",", comps.ToArray()) + "}}}}");
            var m = BundleManifest.Parse(sb.ToString());
            var runner = new FakeRunner(m);
            var noise = new NpyArray { Shape = new[] { 1, 80, 128 }, Floats = new float[80 * 128] };
            var flow = new SentisTts.Core.Flow.FlowStage(m, runner, noise);
            var prompt = new FlowPrompt { Tokens = new[] { 1, 2, 3, 4 }, Mel = new float[8 * 80], MelFrames = 8, Embedding = new float[192] };
            var toks = new List<int>(); for (int i = 0; i < 20; i++) toks.Add(i * 7);
            var mel = flow.TokensToMel(toks, prompt, true, false);   // 24 tokens -> bucket 64, (24-3)*2 - 8 new frames
            Check(mel.Frames == 34 && mel.Mels == 80, "streaming chunk frames " + mel.Frames);
            Check(string.Join(",", runner.Calls.ToArray()) == "flow_encoder_64" + new StringBuilder().Insert(0, ",flow_step_64", 10), "calls " + string.Join(",", runner.Calls.ToArray()));
            toks.AddRange(new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 });  // 37 tokens -> 74 frames -> bucket 128
            mel = flow.TokensToMel(toks, prompt, false, true);
            Check(mel.Frames == 66, "final frames " + mel.Frames);
            Check(runner.Calls[11] == "flow_encoder_128", "bucket 128 for 74 frames");
            Check(runner.Leaked == 0, runner.Leaked + " values leaked");
            bool threw = false;
            for (int i = 0; i < 40; i++) toks.Add(1);
            try { flow.TokensToMel(toks, prompt, false, true); } catch (SentisTtsException e) { threw = e.Message.Contains("largest flow graph takes 128"); }
            Check(threw, "too long for every bucket -> one-line error");
        }

        static void TestPlan()
        {
            var m = BundleManifest.Parse(Load("hift_stream.json").Obj("manifest").ToJsonText());
            var v = new HiftVocoder(m, null);
            foreach (var n in new[] { v.T + 1, 2 * v.T, 300, 1000 })
            {
                var plan = v.Plan(n);
                int e = 0;
                foreach (var p in plan)
                {
                    Check(p[1] == e, "contiguous emission");
                    Check(p[0] >= 0 && p[0] + v.T <= n && p[0] <= p[1] && p[2] <= p[0] + v.T, "chunk inside the mel");
                    e = p[2];
                }
                Check(e == n && plan[0][0] == 0 && plan[plan.Count - 1][0] + v.T == n, "covers 0.." + n);
            }
        }

        // -- golden traces ------------------------------------------------------------------------
        static void TestTokenizerGolden(JsonObject trace)
        {
            var dir = Path.Combine(golden, trace.Str("tokenizer_dir"));
            var tok = Qwen2Tokenizer.FromDirectory(dir);
            var bad = new List<string>();
            int n = 0;
            foreach (JsonObject c in trace.Arr("cases"))
            {
                var text = c.Str("text");
                var want = Json.IntArray(c.Get("ids"));
                var got = tok.Encode(text).ToArray();
                n++;
                var pieces = c.Arr("pieces");
                if (pieces != null)
                {
                    var mine = Pretokenizer.Split(text.Normalize(NormalizationForm.FormC));
                    var theirs = pieces.ConvertAll(x => (string)x);
                    if (string.Join("\u0001", mine.ToArray()) != string.Join("\u0001", theirs.ToArray()))
                    {
                        bad.Add(Json.Quote(text) + ": pieces " + Json.Quote(string.Join("|", mine.ToArray())) + " want " + Json.Quote(string.Join("|", theirs.ToArray())));
                        continue;
                    }
                }
                if (string.Join(",", Array.ConvertAll(got, x => x.ToString())) != string.Join(",", Array.ConvertAll(want, x => x.ToString())))
                    bad.Add(Json.Quote(text) + ": got [" + string.Join(",", Array.ConvertAll(got, x => x.ToString())) + "] want [" + string.Join(",", Array.ConvertAll(want, x => x.ToString())) + "]");
                else if (tok.Decode(got, false) != text.Normalize(NormalizationForm.FormC))
                    bad.Add(Json.Quote(text) + ": decode(encode(text)) differs");
            }
            Check(n >= 300, "corpus too small: " + n);
            Check(bad.Count == 0, bad.Count + "/" + n + " lines differ, e.g.\n" + string.Join("\n", bad.GetRange(0, Math.Min(5, bad.Count)).ToArray()));
        }

        static void TestSamplerGolden(JsonObject trace)
        {
            var bad = new List<string>();
            int k = 0;
            foreach (JsonObject c in trace.Arr("cases"))
            {
                var scores = FloatsB64(c.Str("scores"));
                var mants = Json.LongArray(c.Get("uniforms_2p53"));
                var us = new List<double>();
                foreach (var m in mants) us.Add(m / 9007199254740992.0);
                var rng = new ReplayUniforms(us);
                var p = new RasParams { TopP = (float)c.Double("top_p"), TopK = c.Int("top_k"), WinSize = c.Int("win_size"), TauR = c.Double("tau_r") };
                var decoded = new List<int>(Json.IntArray(c.Get("decoded")));
                int tok;
                switch (c.Str("method"))
                {
                    case "ras": tok = Sampler.Ras(scores, decoded, p, rng); break;
                    case "nucleus": tok = Sampler.Nucleus(scores, p.TopP, p.TopK, rng); break;
                    default: tok = Sampler.Random(scores, rng); break;
                }
                if (tok != c.Int("token") || rng.Used != c.Int("uniforms_used"))
                    bad.Add("case " + k + " (" + c.Str("method") + ", n=" + scores.Length + "): token " + tok + " want " + c.Int("token") + ", uniforms used " + rng.Used + " want " + c.Int("uniforms_used"));
                k++;
            }
            Check(k >= 40, "too few cases");
            Check(bad.Count == 0, string.Join("\n", bad.ToArray()));
        }

        /// <summary>The C# text front-end against runtime_ref's (language, normalisation, pieces at two
        /// budgets or the error, token budgets) on the multilingual corpus + number/tag/splitting cases.</summary>
        static void TestTextFrontend(JsonObject trace)
        {
            var tok = Qwen2Tokenizer.FromDirectory(Path.Combine(golden, trace.Str("tokenizer_dir")));
            var bad = new List<string>();
            int n = 0;
            foreach (JsonObject c in trace.Arr("cases"))
            {
                n++;
                var text = c.Str("text");
                var lang = TextNormalizer.DetectLanguage(text);
                if (lang != c.Str("lang")) bad.Add("lang of " + Json.Quote(text) + ": " + lang + ", runtime_ref " + c.Str("lang"));
                var norm = TextNormalizer.Normalize(text);
                if (norm != c.Str("normalized")) bad.Add("normalize " + Json.Quote(text) + ": " + Json.Quote(norm) + ", runtime_ref " + Json.Quote(c.Str("normalized")));
                foreach (var budget in new[] { 12, 40 })
                {
                    var want = c.Get("pieces_" + budget);
                    string got;
                    try { got = Json.Write(TextFrontend.Pieces(tok, text, budget).ConvertAll(x => (object)x)); }
                    catch (SentisTtsException e) { got = "error: " + e.Message.Split('\'')[0].Split(new[] { " (" }, StringSplitOptions.None)[0].Trim(); }
                    var w = want is JsonObject ? "error: " + ((JsonObject)want).Str("error") : Json.Write(want);
                    if (got != w) bad.Add("pieces@" + budget + " of " + Json.Quote(text) + ": " + got + ", runtime_ref " + w);
                }
            }
            foreach (JsonObject b in trace.Arr("budgets"))
            {
                int got = TextSplitter.TokenBudget(b.Int("max_cache_len"), b.Int("max_flow_tokens"), b.Int("prompt_text_tokens"), b.Int("prompt_speech_tokens"),
                                                   b.Double("speech_tokens_per_text_token"));
                if (got != b.Int("budget")) bad.Add("budget " + b.ToJsonText() + ": " + got);
            }
            Check(n > 300, "only " + n + " cases");
            Check(bad.Count == 0, bad.Count + " differences, first: " + string.Join("\n", bad.GetRange(0, Math.Min(8, bad.Count)).ToArray()));
        }

        static double[] Doubles(float[] f) { var d = new double[f.Length]; for (int i = 0; i < f.Length; i++) d[i] = f[i]; return d; }

        static void Close(float[] got, JsonObject want, double tol, string what)
        {
            var w = FloatsB64(want.Str("data"));
            Check(got.Length == w.Length, what + ": " + got.Length + " values, runtime_ref " + w.Length);
            double worst = 0; int at = -1;
            for (int i = 0; i < w.Length; i++) { double e = Math.Abs(got[i] - w[i]); if (e > worst) { worst = e; at = i; } }
            Console.WriteLine("INFO " + what + " max-abs vs runtime_ref " + worst.ToString("0.0e0"));
            Check(worst <= tol, what + ": max-abs " + worst + " at " + at + " > " + tol);
        }

        /// <summary>Voice-making features (resampling, Kaldi fbank, flow prompt mel) against runtime_ref.</summary>
        static void TestVoiceFeatures(JsonObject trace)
        {
            double tol = trace.Double("tolerance");
            var x = Doubles(FloatsB64(trace.Obj("signal").Str("data")));
            int rate = trace.Int("rate");
            PromptFeatures.CheckPrompt(x, rate);
            var w16 = Array.ConvertAll(PromptFeatures.Resample(x, rate, 16000), v => (float)v);
            var w24 = Array.ConvertAll(PromptFeatures.Resample(x, rate, 24000), v => (float)v);
            Close(w16, trace.Obj("wav16"), tol, "resample 16 kHz");
            Close(w24, trace.Obj("wav24"), tol, "resample 24 kHz");
            int nf, nm;
            var fb = PromptFeatures.KaldiFbank(Doubles(FloatsB64(trace.Obj("wav16").Str("data"))), out nf);
            Check(nf == Json.IntArray(trace.Obj("fbank").Get("shape"))[0], "fbank frames " + nf);
            Close(fb, trace.Obj("fbank"), tol, "kaldi fbank");
            var mel = PromptFeatures.FlowMel(Doubles(FloatsB64(trace.Obj("wav24").Str("data"))), out nm);
            Check(nm == Json.IntArray(trace.Obj("flow_mel").Get("shape"))[0], "mel frames " + nm);
            Close(mel, trace.Obj("flow_mel"), tol, "flow mel");
            // the chain from the C# resampler
            Close(PromptFeatures.KaldiFbank(Doubles(w16), out nf), trace.Obj("fbank"), tol, "kaldi fbank of the C# 16 kHz signal");
            bool threw = false;
            try { PromptFeatures.CheckPrompt(new double[8000], 16000); } catch (SentisTtsException e) { threw = e.Message.Contains("at least 1 s"); }
            Check(threw, "a 0.5 s prompt is refused");
        }

        /// <summary>VoiceBuilder (features + speech_tokenizer + campplus graphs + alignment) against
        /// runtime_ref.prompt.bake_voice: same graph calls and input bytes, same tokens, embedding, mel.</summary>
        static void TestVoiceBake(JsonObject trace)
        {
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            var sig = Load(trace.Str("signal_file"));
            var x = Doubles(FloatsB64(sig.Obj("signal").Str("data")));
            var runner = new ReplayRunner(trace);
            var v = VoiceBuilder.Build(m, runner, x, sig.Int("rate"), "mic", "A tiny text.");
            ReportReplay(runner);
            var res = trace.Obj("result");
            Check(Ids(v.SpeechTokens) == Ids(Json.IntArray(res.Get("speech_tokens"))), "speech tokens " + Ids(v.SpeechTokens));
            Close(v.Embedding, res.Obj("embedding"), trace.Double("tolerance"), "voice embedding");
            Close(v.PromptMel, res.Obj("prompt_mel"), trace.Double("tolerance"), "voice prompt mel");
            Check(v.PromptMelFrames == 2 * v.SpeechTokens.Length && v.PromptText == "A tiny text.", "alignment");
        }

        static string Ids(IList<int> x) { var a = new string[x.Count]; for (int i = 0; i < a.Length; i++) a[i] = x[i].ToString(); return string.Join(",", a); }

        static void ReportReplay(ReplayRunner r)
        {
            Check(r.Failures.Count == 0, "call sequence differs from the trace:\n" + string.Join("\n", r.Failures.ToArray()));
            Check(r.Next == r.CallCount, "Core made " + r.Next + " graph calls, the trace has " + r.CallCount);
            Check(r.Leaked == 0, r.Leaked + " graph values were not disposed");
        }

        static void TestLlmTrace(JsonObject trace)
        {
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            var p = trace.Obj("params");
            var runner = new ReplayRunner(trace);
            var gen = new LlmGenerator(m, runner);
            var us = new List<double>();
            foreach (var x in Json.LongArray(p.Get("uniforms_2p53"))) us.Add(x / 9007199254740992.0);
            var rng = new ReplayUniforms(us);
            Generation g;
            try
            {
                g = gen.Generate(Json.IntArray(p.Get("text_ids")), Json.IntArray(p.Get("prompt_text_ids")), Json.IntArray(p.Get("prompt_speech_tokens")),
                                 new RasSampler(gen.Ras), rng, p.Int("max_new_tokens"));
            }
            catch (InvalidOperationException) { ReportReplay(runner); throw; }
            ReportReplay(runner);
            var res = trace.Obj("result");
            var want = Json.IntArray(res.Get("tokens"));
            Check(string.Join(",", g.Tokens.ConvertAll(x => x.ToString()).ToArray()) == string.Join(",", Array.ConvertAll(want, x => x.ToString())),
                  "tokens [" + string.Join(",", g.Tokens.ConvertAll(x => x.ToString()).ToArray()) + "], trace [" + string.Join(",", Array.ConvertAll(want, x => x.ToString())) + "]");
            Check(g.StopReason == res.Str("stop_reason"), "stop reason " + g.StopReason);
            Check(g.PromptLength == res.Int("prompt_len"), "prompt length " + g.PromptLength);
            Check(rng.Used == us.Count, "used " + rng.Used + " uniforms, the trace " + us.Count);
        }

        static Mel SynthMel(int nMels, int frames, long seed, float scale)
        {
            var d = ReplayRunner.Synth(nMels * frames, seed);
            for (int i = 0; i < d.Length; i++) d[i] *= scale;
            return new Mel(nMels, frames, d);
        }

        static void TestHiftMel2Wav(JsonObject trace)
        {
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            var p = trace.Obj("params");
            var runner = new ReplayRunner(trace);
            var v = new HiftVocoder(m, runner);
            int n = p.Int("frames");
            var mel = SynthMel(v.NMels, n, p.Long("mel_seed"), (float)p.Double("mel_scale"));
            var noise = ReplayRunner.Synth(v.Hop * n * v.H, p.Long("noise_seed"));
            float[] cache = p.Get("cache_source_seed") == null ? null : ReplayRunner.Synth(v.SourceCache, p.Long("cache_source_seed"));
            float[] wav, src;
            v.Mel2Wav(mel, noise, cache, out wav, out src);
            ReportReplay(runner);
            var res = trace.Obj("result");
            Check(Sha(wav, new[] { 1, wav.Length }) == res.Obj("waveform").Str("sha256"), "waveform bytes differ");
            Check(Sha(src, new[] { 1, 1, src.Length }) == res.Obj("source").Str("sha256"), "source bytes differ");
        }

        static void TestHiftStream(JsonObject trace)
        {
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            var p = trace.Obj("params");
            var runner = new ReplayRunner(trace);
            var v = new HiftVocoder(m, runner);
            var sizes = Json.IntArray(p.Get("chunk_frames"));
            long noiseSeed = p.Long("noise_seed_base");
            var stream = v.BeginStream(frames => ReplayRunner.Synth(v.Hop * frames * v.H, noiseSeed++));
            var pieces = trace.Obj("result").Arr("pieces");
            Check(pieces.Count == sizes.Length, "piece count");
            for (int i = 0; i < sizes.Length; i++)
            {
                var mel = SynthMel(v.NMels, sizes[i], p.Long("mel_seed_base") + i, (float)p.Double("mel_scale"));
                var wav = stream.Push(mel, i == sizes.Length - 1);
                var e = (JsonObject)pieces[i];
                var shape = Json.IntArray(e.Get("shape"));
                Check(wav.Length == shape[1], "piece " + i + ": " + wav.Length + " samples, trace " + shape[1]);
                Check(Sha(wav, new[] { 1, wav.Length }) == e.Str("sha256"), "piece " + i + ": bytes differ");
            }
            ReportReplay(runner);
        }

        /// <summary>Bistream (BeginBistream of the trace family's pipeline) against a trace of runtime_ref
        /// Pipeline.stream_bistream / CosyVoice3Pipeline.stream_bistream, with the text pushed all at once,
        /// just in time, and one chunk per frame: the same graph calls, tokens, uniforms, noise draws and
        /// PCM every time.</summary>
        static void TestBistreamTrace(JsonObject trace)
        {
            for (int schedule = 0; schedule < 3; schedule++)
            {
                var c = new PipelineCase(trace, golden);
                var runner = new ReplayRunner(trace);
                var pipe = SpeechPipeline.ForBundle(c.Manifest, runner, c.Tokenizer, new FlowStage(c.Manifest, runner, c.FlowNoise));
                Check(c.IsCosyVoice3 ? pipe is CosyVoice3Pipeline : pipe is TtsPipeline, "ForBundle built " + pipe.GetType().Name);
                var req = c.Request(pipe);
                var pcm = new List<float[]>();
                var s = pipe.BeginBistream(req, pcm.Add);
                try { c.DriveBistream(s, schedule, () => s.Tick(() => false), () => { }); }
                catch (Exception) { if (runner.Failures.Count > 0) ReportReplay(runner); throw; }
                ReportReplay(runner);
                Check(runner.Next == runner.CallCount, "schedule " + schedule + ": made " + runner.Next + " graph calls, the trace has " + runner.CallCount);
                c.Verify(s.Result, req, pcm);
                s.Dispose();
                Check(runner.Leaked == 0, "schedule " + schedule + ": " + runner.Leaked + " graph values not disposed");
            }
        }

        /// <summary>The whole pipeline (TtsPipeline + HiftVocoder, or CosyVoice3Pipeline + CausalHiftVocoder,
        /// with FlowStage and LlmGenerator) against a trace of runtime_ref.pipeline / runtime_ref.cosyvoice3:
        /// same graph calls in the same order with the same input bytes, same ids (the C# front-end's), the
        /// flow's tokens, same uniforms consumed, same noise draws, same PCM chunks (sha256).</summary>
        static void TestPipelineTrace(JsonObject trace)
        {
            var c = new PipelineCase(trace, golden);
            var runner = new ReplayRunner(trace);
            var pipe = SpeechPipeline.ForBundle(c.Manifest, runner, c.Tokenizer, new FlowStage(c.Manifest, runner, c.FlowNoise));
            Check(c.IsCosyVoice3 ? pipe is CosyVoice3Pipeline : pipe is TtsPipeline, "ForBundle built " + pipe.GetType().Name);
            var req = c.Request(pipe);
            var pcm = new List<float[]>();
            Generation g;
            try { g = pipe.Synthesize(req, pcm.Add); }
            catch (Exception) { if (runner.Failures.Count > 0) ReportReplay(runner); throw; }
            ReportReplay(runner);
            c.Verify(g, req, pcm);
        }
    }
}
