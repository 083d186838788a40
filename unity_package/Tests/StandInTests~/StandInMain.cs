// The package's real SentisGraphRunner, SpeakerLogic (what CosyVoiceSpeaker runs) and Core on the
// Sentis stand-in (Tests/SentisStandIn~). Compiled with Mono by tests/unity/test_sentis_standin.py.
// Usage: StandInTests.exe <golden dir> <full-shaped llm manifest.json> [--dump-api]
// Prints "COUNTS <label> key=value ..." lines (per decode step figures for the docs) and ends with
// "N passed, M failed".
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using SentisStandIn;
using SentisTts.Core;
using SentisTts.Core.Flow;
using SentisTts.Core.Llm;
using SentisTts.Core.Pipeline;
using SentisTts.Core.Sampling;
using SentisTts.Sentis;
using Unity.InferenceEngine;

namespace SentisTts.Tests
{
    public static class StandInMain
    {
        static int passed, failed;
        static string golden, fullManifest;

        static void Check(bool ok, string what) { if (!ok) throw new Exception(what); }

        static void Run(string name, Action test)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            try { Device.Reset(); test(); passed++; Console.WriteLine("PASS " + name + " (" + sw.ElapsedMilliseconds + " ms)"); }
            catch (Exception e) { failed++; Console.WriteLine("FAIL " + name + ": " + e.Message.Replace("\n", "\n    ") + "\n    " + e.StackTrace.Replace("\n", "\n    ")); }
        }

        static JsonObject Load(string path) { return Json.ParseObject(File.ReadAllText(path, Encoding.UTF8)); }

        public static int Main(string[] args)
        {
            if (args.Length > 0 && args[0] == "--dump-api") { DumpApi(); return 0; }
            golden = args[0];
            fullManifest = args[1];
            var files = new List<string>(Directory.GetFiles(golden, "*.json"));
            files.Sort(StringComparer.Ordinal);
            foreach (var f in files)
            {
                var trace = Load(f);
                var kind = trace.Str("kind");
                if (kind == "pipeline") Run("golden " + Path.GetFileName(f) + " through SentisGraphRunner, frame by frame", () => GoldenPipeline(trace));
                if (kind == "pipeline_bistream") Run("golden " + Path.GetFileName(f) + " (bistream) through SentisGraphRunner, frame by frame", () => GoldenBistream(trace));
                if (kind == "llm_generate") Run("golden " + Path.GetFileName(f) + " through SentisGraphRunner, frame by frame", () => GoldenLlm(trace));
                if (kind == "cv3_pipeline") Run("golden " + Path.GetFileName(f) + " (cosyvoice3) through SentisGraphRunner, frame by frame", () => GoldenPipeline(trace));
                if (kind == "cv3_pipeline_bistream") Run("golden " + Path.GetFileName(f) + " (cosyvoice3 bistream) through SentisGraphRunner, frame by frame", () => GoldenBistream(trace));
            }
            Run("decode step counts, tiny bundle", () => DecodeCounts(TinyManifest(), "tiny"));
            Run("decode step counts, full-size LLM shapes", () => DecodeCounts(BundleManifest.Parse(File.ReadAllText(fullManifest)), "full"));
            Run("CPU backend: no blocking readback per decode step", () => DecodeCounts(TinyManifest(), "tiny-cpu", BackendType.CPU));
            Run("readback latency: tokens per frame", ReadbackLatency);
            Run("frame budget: prefill and chunks spread over frames", FrameBudget);
            Run("in-graph sampling vs CPU sampling: per step and tokens per frame", SamplingDesigns);
            Run("speaker: 100 utterances with cancellations, then destroy mid-Speak", HundredUtterances);
            Run("speaker: Speak(text, \"\") uses the default voice", DefaultVoice);
            Run("speaker: SpeakStream (bistream) with cancellations, then destroy mid-stream", SpeakStreams);
            Run("cancel a streamed utterance mid-way (every in-flight flow/HiFT frame): the session holds no value afterwards", CancelEveryFrame);
            Run("cosyvoice3: cancel a streamed utterance at every in-flight flow/vocoder frame: the session holds no value afterwards", CancelEveryFrameCosyVoice3);
            Run("speaker on a cosyvoice3 bundle: utterances with cancellations, no blocking readback, then destroy mid-Speak", CosyVoice3Speaker);
            Run("speaker on a cosyvoice3 bundle: SpeakStream (bistream) with cancellations, then destroy mid-stream", SpeakStreamsCosyVoice3);
            Run("speaker: a paragraph is normalised and split into pieces that fit the bundle", Paragraph);
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 ? 0 : 1;
        }

        // -- helpers ---------------------------------------------------------------------------------
        static BundleManifest TinyManifest() { return BundleManifest.Parse(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")).Obj("manifest").ToJsonText()); }

        static SentisGraphRunner SyntheticRunner(BundleManifest m, BackendType backend = BackendType.GPUCompute)
        {
            return new SentisGraphRunner(StandInModels.Loader(m, g => new SyntheticExecutor(m, g)), backend, LlmGenerator.WorkersPerGraph(m));
        }

        static string Line(Counters d, int steps)
        {
            Func<long, string> per = x => (x / (double)steps).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);
            return "tensor_allocations=" + per(d.TensorAllocations) + " device_allocations=" + per(d.DeviceAllocations) +
                   " host_allocations=" + per(d.HostAllocations) + " schedules=" + per(d.Schedules) + " submissions=" + per(d.Submissions) +
                   " copy_outputs=" + per(d.CopyOutputs) + " blocking_readbacks=" + per(d.BlockingReadbacks) + " async_readbacks=" + per(d.AsyncReadbacks) +
                   " device_bytes_copied=" + per(d.DeviceBytesCopied) + " graph_bytes_written=" + per(d.GraphBytesWritten) +
                   " bytes_uploaded=" + per(d.BytesUploaded) + " bytes_downloaded=" + per(d.BytesDownloaded);
        }

        /// <summary>Drive a session frame by frame: Tick, then the frame ends (readbacks progress).</summary>
        static int DriveFrames(SpeechSession s, double budget, int maxTokens, int maxFrames = 100000)
        {
            int frames = 0;
            while (!s.Done)
            {
                double t0 = Device.Clock;
                s.Tick(() => Device.Clock - t0 >= budget, maxTokens);
                Device.EndFrame();
                Check(++frames < maxFrames, "no progress after " + maxFrames + " frames");
            }
            return frames;
        }

        // -- golden traces through the real runner -----------------------------------------------------
        /// <summary>A pipeline trace (CosyVoice2 or CosyVoice3: the family's pipeline, as CosyVoiceSpeaker
        /// builds it) through the real runner, 4 tokens per frame: the same calls, ids, tokens and PCM as
        /// the trace; no blocking readback (the LLM's, the flow's and the vocoder's are all asynchronous);
        /// nothing live after Dispose.</summary>
        static void GoldenPipeline(JsonObject trace)
        {
            var c = new PipelineCase(trace, golden);
            var replay = new ReplayRunner(trace);
            var runner = new SentisGraphRunner(StandInModels.Loader(c.Manifest, g => new ReplayExecutor(replay, g)), BackendType.GPUCompute,
                                               LlmGenerator.WorkersPerGraph(c.Manifest));
            var pipe = SpeechPipeline.ForBundle(c.Manifest, runner, c.Tokenizer, new FlowStage(c.Manifest, runner, c.FlowNoise));
            Check(c.IsCosyVoice3 == pipe is CosyVoice3Pipeline, "ForBundle built " + pipe.GetType().Name);
            var req = c.Request(pipe);
            var pcm = new List<float[]>();
            var s = pipe.Begin(req, pcm.Add);
            var c0 = Device.C.Clone();
            int frames;
            try { frames = DriveFrames(s, double.PositiveInfinity, 4); }
            catch (Exception) { if (replay.Failures.Count > 0) Check(false, string.Join("\n", replay.Failures.ToArray())); throw; }
            Check(replay.Failures.Count == 0, "call sequence differs from the trace:\n" + string.Join("\n", replay.Failures.ToArray()));
            Check(replay.Next == replay.CallCount, "made " + replay.Next + " graph calls, the trace has " + replay.CallCount);
            c.Verify(s.Result, req, pcm);
            var d = Device.C.Minus(c0);
            Console.WriteLine("COUNTS " + (c.IsCosyVoice3 ? "cosyvoice3 " : "") + "utterance " + c.Params.Str("mode") + (req.Streaming ? " streaming" : "") + " (" + s.Result.Tokens.Count + " tokens, " + pcm.Count +
                              " PCM pieces, " + frames + " frames): blocking_readbacks=" + d.BlockingReadbacks + " async_readbacks=" + d.AsyncReadbacks +
                              " schedules=" + d.Schedules + " copy_outputs=" + d.CopyOutputs);
            // the whole utterance (prefill, every decode step, every flow mel and HiFT readback) never waits
            Check(d.BlockingReadbacks == 0, d.BlockingReadbacks + " blocking readbacks in a frame-driven utterance");
            s.Dispose();
            runner.Dispose();
            Check(Device.C.LiveTensors == 0 && Device.C.LiveWorkers == 0 && Device.C.LiveDeviceBytes == 0,
                  "after Dispose: " + Device.C.LiveTensors + " tensors, " + Device.C.LiveWorkers + " workers, " + Device.C.LiveDeviceBytes + " device bytes live");
        }

        /// <summary>A bistream trace frame by frame: text pushed just in time (schedule 1) and one chunk
        /// per frame (schedule 2); same calls, tokens and PCM; nothing live after Dispose.</summary>
        static void GoldenBistream(JsonObject trace)
        {
            foreach (var schedule in new[] { 1, 2 })
            {
                Device.Reset();
                var c = new PipelineCase(trace, golden);
                var replay = new ReplayRunner(trace);
                var runner = new SentisGraphRunner(StandInModels.Loader(c.Manifest, g => new ReplayExecutor(replay, g)), BackendType.GPUCompute,
                                                   LlmGenerator.WorkersPerGraph(c.Manifest));
                var pipe = SpeechPipeline.ForBundle(c.Manifest, runner, c.Tokenizer, new FlowStage(c.Manifest, runner, c.FlowNoise));
                Check(c.IsCosyVoice3 == pipe is CosyVoice3Pipeline, "ForBundle built " + pipe.GetType().Name);
                var req = c.Request(pipe);
                var pcm = new List<float[]>();
                var s = pipe.BeginBistream(req, pcm.Add);
                long blocking0 = Device.C.BlockingReadbacks;
                try { c.DriveBistream(s, schedule, () => s.Tick(() => false, 4), Device.EndFrame); }
                catch (Exception) { if (replay.Failures.Count > 0) Check(false, string.Join("\n", replay.Failures.ToArray())); throw; }
                Check(replay.Failures.Count == 0, "call sequence differs from the trace:\n" + string.Join("\n", replay.Failures.ToArray()));
                Check(replay.Next == replay.CallCount, "made " + replay.Next + " graph calls, the trace has " + replay.CallCount);
                c.Verify(s.Result, req, pcm);
                BistreamBlocking = Device.C.BlockingReadbacks - blocking0;
                Check(BistreamBlocking == 0, BistreamBlocking + " blocking readbacks in a frame-driven bistream utterance");
                s.Dispose();
                runner.Dispose();
                Check(Device.C.LiveTensors == 0 && Device.C.LiveWorkers == 0 && Device.C.LiveDeviceBytes == 0,
                      "after Dispose: " + Device.C.LiveTensors + " tensors, " + Device.C.LiveWorkers + " workers, " + Device.C.LiveDeviceBytes + " device bytes live");
            }
        }

        static long BistreamBlocking;

        static void GoldenLlm(JsonObject trace)
        {
            var m = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            var p = trace.Obj("params");
            var replay = new ReplayRunner(trace);
            var runner = new SentisGraphRunner(StandInModels.Loader(m, g => new ReplayExecutor(replay, g)), BackendType.GPUCompute, LlmGenerator.WorkersPerGraph(m));
            var gen = new LlmGenerator(m, runner);
            var us = new List<double>();
            foreach (var x in Json.LongArray(p.Get("uniforms_2p53"))) us.Add(x / 9007199254740992.0);
            var s = gen.Begin(Json.IntArray(p.Get("text_ids")), Json.IntArray(p.Get("prompt_text_ids")), Json.IntArray(p.Get("prompt_speech_tokens")),
                              new RasSampler(gen.Ras), new ReplayUniforms(us), p.Int("max_new_tokens"));
            var blocking0 = Device.C.BlockingReadbacks;
            int frames = 0;
            while (!s.Done) { LlmGenerator.Status st; while ((st = s.Work()) == LlmGenerator.Status.Working || st == LlmGenerator.Status.Token) { } Device.EndFrame(); Check(++frames < 100000, "stuck"); }
            Check(replay.Failures.Count == 0, string.Join("\n", replay.Failures.ToArray()));
            Check(replay.Next == replay.CallCount, "made " + replay.Next + " graph calls, the trace has " + replay.CallCount);
            var want = Json.IntArray(trace.Obj("result").Get("tokens"));
            Check(string.Join(",", s.Result.Tokens.ConvertAll(x => x.ToString()).ToArray()) == string.Join(",", Array.ConvertAll(want, x => x.ToString())), "tokens differ");
            Check(Device.C.BlockingReadbacks == blocking0, (Device.C.BlockingReadbacks - blocking0) + " blocking readbacks in a frame-driven generation");
            s.Dispose();
            runner.Dispose();
            Check(Device.C.LiveTensors == 0, Device.C.LiveTensors + " tensors live after Dispose");
        }

        // -- per-step counts ---------------------------------------------------------------------------
        static void DecodeCounts(BundleManifest m, string label, BackendType backend = BackendType.GPUCompute)
        {
            var runner = SyntheticRunner(m, backend);
            var gen = new LlmGenerator(m, runner);
            var ids = new List<int>(); for (int i = 0; i < 12; i++) ids.Add(10 + i);
            var c0 = Device.C.Clone();
            var s = gen.Begin(ids, new int[0], new int[0], new RasSampler(gen.Ras), new SeededUniforms(1), 40);
            int frames = 0, steps = 0;
            Counters before = null, after = null;
            long m0 = 0, m1 = 0;
            const int warm = 5, last = 39;  // measured: tokens 6..39 (the 40th ends the generation and frees its cache)
            while (!s.Done)
            {
                LlmGenerator.Status st;
                do
                {
                    st = s.Work();
                    if (st == LlmGenerator.Status.Token)
                    {
                        ++steps;
                        if (steps == warm) { before = Device.C.Clone(); m0 = Device.CallerManagedBytes(); }
                        if (steps == last) { m1 = Device.CallerManagedBytes(); after = Device.C.Clone(); }
                    }
                } while (st == LlmGenerator.Status.Working);
                Device.EndFrame();
                frames++;
            }
            var d = after.Minus(before);
            int measured = last - warm;
            long managed = m1 - m0;
            Console.WriteLine("COUNTS " + label + " prefill+warm-up(5 tokens) " + Line(before.Minus(c0), 1));
            Console.WriteLine("COUNTS " + label + " per decode step (" + measured + " steps) " + Line(d, measured) +
                              " managed_bytes=" + (managed / (double)measured).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) +
                              " (GC.GetAllocatedBytesForCurrentThread, the stand-in's own allocations subtracted)");
            Check(managed == 0, managed + " managed bytes allocated in " + measured + " decode steps after warm-up");
            Check(d.TensorAllocations == 0 && d.DeviceAllocations == 0 && d.HostAllocations == 0, "allocations after warm-up: " + Line(d, measured));
            Check(d.BlockingReadbacks == 0, d.BlockingReadbacks + " blocking readbacks in " + measured + " decode steps");
            int layersTensors = gen.CacheInputs.Length;
            // rows contract (llm.graphs.cache_append): embedding + step + append = 3 submissions;
            // the old full-cache contract also copies every cache tensor out of the step worker
            long bound = gen.AppendGraph != null ? 3 : 2 + layersTensors;
            if (backend == BackendType.GPUCompute)
                Check(d.Submissions <= bound * measured, "submissions per step " + (d.Submissions / (double)measured) + " > " + bound);
            s.Dispose();
            runner.Dispose();
            Check(Device.C.LiveTensors == 0, Device.C.LiveTensors + " tensors live after Dispose");
        }

        static void ReadbackLatency()
        {
            var m = TinyManifest();
            foreach (var lat in new[] { 1, 2, 3 })
            {
                Device.Reset();
                Device.ReadbackLatencyFrames = lat;
                var runner = SyntheticRunner(m);
                var gen = new LlmGenerator(m, runner);
                var ids = new List<int>(); for (int i = 0; i < 12; i++) ids.Add(10 + i);
                var s = gen.Begin(ids, new int[0], new int[0], new RasSampler(gen.Ras), new SeededUniforms(1), 60);
                int frames = 0, tokens = 0, startFrame = -1;
                while (!s.Done)
                {
                    LlmGenerator.Status st;
                    while ((st = s.Work()) == LlmGenerator.Status.Working || st == LlmGenerator.Status.Token)
                        if (st == LlmGenerator.Status.Token && tokens++ == 0) startFrame = frames;
                    Device.EndFrame(); frames++;
                }
                double perFrame = (tokens - 1) / (double)(frames - startFrame - 1);
                Console.WriteLine("COUNTS readback latency " + lat + " frame(s): " + perFrame.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) +
                                  " tokens/frame with CPU sampling (" + (60 * perFrame).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) + " tokens/s at 60 fps; real time needs 25)");
                Check(Math.Abs(perFrame - 1.0 / lat) < 0.1, "tokens per frame " + perFrame + " at latency " + lat);
                Check(Device.C.BlockingReadbacks == 0, "blocking readbacks");
                s.Dispose(); runner.Dispose();
            }
        }

        /// <summary>The two decode designs on the same stand-in, through the real LlmGenerator: CPU
        /// sampling after an asynchronous log-prob readback (the default) and DeviceSampling (the
        /// bundle's llm_sample graph; the token fed back on the device, read back asynchronously, up to
        /// 12 tokens ahead). Per decode step after warm-up: submissions, bytes, managed bytes; tokens per
        /// frame at readback latencies 1-3 with a 4 ms budget at 0.25 ms per graph call (4 steps);
        /// steps discarded after the stop token.</summary>
        static void SamplingDesigns()
        {
            var text = Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")).Obj("manifest").ToJsonText();
            var sample = "\"llm_sample\":{\"component\":\"llm\",\"file\":\"llm_sample.onnx\",\"inputs\":[{\"name\":\"logprobs\",\"shape\":[1,6564],\"dtype\":\"float32\"}," +
                         "{\"name\":\"uniforms\",\"shape\":[1,2],\"dtype\":\"float32\"},{\"name\":\"window\",\"shape\":[1,10],\"dtype\":\"int32\"},{\"name\":\"mask_eos\",\"shape\":[1,1],\"dtype\":\"float32\"}]," +
                         "\"outputs\":[{\"name\":\"token\",\"shape\":[1,1],\"dtype\":\"int32\"},{\"name\":\"window_next\",\"shape\":[1,10],\"dtype\":\"int32\"}]},";
            int at = text.LastIndexOf("\"graphs\":{", StringComparison.Ordinal) + "\"graphs\":{".Length;  // the top-level key (written last)
            text = text.Substring(0, at) + sample + text.Substring(at);
            text = text.Replace("\"cache_append\":\"llm_cache_append\"", "\"cache_append\":\"llm_cache_append\",\"sample\":\"llm_sample\"");
            var m = BundleManifest.Parse(text);
            int eos = m.Component("llm").Int("eos_token");
            const int eosAt = 60, warm = 5, last = 39;
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            foreach (var onDevice in new[] { false, true })
                foreach (var lat in new[] { 1, 2, 3 })
                {
                    Device.Reset();
                    Device.ReadbackLatencyFrames = lat;
                    Device.GraphCost = g => 0.00025;
                    var runner = new SentisGraphRunner(StandInModels.Loader(m, g => g == "llm_sample" ? (IExecutor)new SampleExecutor(eos, eosAt) : new SyntheticExecutor(m, g)),
                                                       BackendType.GPUCompute, LlmGenerator.WorkersPerGraph(m));
                    var gen = new LlmGenerator(m, runner) { DeviceSampling = onDevice };
                    var ids = new List<int>(); for (int i = 0; i < 12; i++) ids.Add(10 + i);
                    var s = gen.Begin(ids, new int[0], new int[0], new RasSampler(gen.Ras), new SeededUniforms(1), 100);
                    Counters before = null, after = null;
                    long m0 = 0, m1 = 0;
                    int frames = 0, firstFrame = -1, tokens = 0, s0 = 0, s1 = 0;
                    Func<int> samples = () => { int n; Device.SchedulesOf.TryGetValue(onDevice ? "llm_sample" : "llm_step", out n); return n; };
                    while (!s.Done)
                    {
                        double t0 = Device.Clock;
                        LlmGenerator.Status st;
                        do
                        {
                            st = s.Work();
                            if (st == LlmGenerator.Status.Token)
                            {
                                if (++tokens == 1) firstFrame = frames;
                                if (tokens == warm) { before = Device.C.Clone(); s0 = samples(); m0 = Device.CallerManagedBytes(); }
                                if (tokens == last) { m1 = Device.CallerManagedBytes(); s1 = samples(); after = Device.C.Clone(); }
                            }
                        } while (st != LlmGenerator.Status.Waiting && !s.Done && Device.Clock - t0 < 0.004);
                        Device.EndFrame();
                        Check(++frames < 10000, "no progress");
                    }
                    int steps = s1 - s0;  // decode steps scheduled in the window (in graph: ahead of the tokens read)
                    var d = after.Minus(before);
                    double perFrame = (tokens - 1) / (double)(frames - firstFrame);
                    int sampled = onDevice ? Device.SchedulesOf["llm_sample"] : tokens;
                    int discarded = onDevice ? sampled - tokens - 1 : 0;
                    Console.WriteLine("COUNTS sampling " + (onDevice ? "in graph" : "on the CPU") + ", readback latency " + lat + ", per decode step: " + Line(d, steps) +
                                      " managed_bytes=" + ((m1 - m0) / (double)steps).ToString("0.##", inv) + " | " + tokens + " tokens in " + (frames - firstFrame) + " frames = " +
                                      perFrame.ToString("0.##", inv) + " tokens/frame (" + (60 * perFrame).ToString("0", inv) + " tokens/s at 60 fps), " + discarded + " steps discarded after the stop");
                    Check(d.BlockingReadbacks == 0 && d.CopyOutputs == 0 && d.TensorAllocations == 0 && m1 == m0, "per step: " + Line(d, steps) + " managed " + (m1 - m0));
                    if (onDevice)
                    {
                        Check(tokens == eosAt && s.Result.StopReason == "stop_token", tokens + " tokens, " + s.Result.StopReason);
                        Check(string.Join(",", s.Result.Tokens.GetRange(0, 3).ConvertAll(x => x.ToString()).ToArray()) == "100,101,102", "device tokens " + s.Result.Tokens[0]);
                        Check(d.Submissions == 4L * steps && d.AsyncReadbacks == steps, "in graph per step: " + Line(d, steps));
                        Check(perFrame > 2.5, "in-graph tokens per frame " + perFrame + " at latency " + lat);
                        Check(discarded <= 4 * (lat + 1), discarded + " discarded steps");
                    }
                    else
                    {
                        Check(d.Submissions == 3L * steps, "CPU sampling per step: " + Line(d, steps));
                        Check(Math.Abs(perFrame - 1.0 / lat) < 0.1, "CPU sampling tokens per frame " + perFrame + " at latency " + lat);
                    }
                    s.Dispose();
                    Check(runner.LiveValues == 0, runner.LiveValues + " values live after the session");
                    runner.Dispose();
                    Check(Device.C.LiveTensors == 0, Device.C.LiveTensors + " tensors live after Dispose");
                }
        }

        static void FrameBudget()
        {
            var m = TinyManifest();
            var runner = SyntheticRunner(m);
            var c = new PipelineCase(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")), golden);
            var pipe = new TtsPipeline(m, runner, c.Tokenizer, new FlowStage(m, runner, c.FlowNoise));
            Device.GraphCost = g => 0.001;  // 1 ms of main-thread scheduling per graph call
            Device.ReadbackLatencyFrames = 0;  // readbacks never hold work back: the budget alone splits the frames
            var text = "A longer line of text, so that the prompt takes several prefill chunks and the stream several vocoder chunks.";
            var req = new SynthesisRequest { Text = text, Voice = c.Voice, Mode = SynthesisMode.ZeroShot, Streaming = true, MaxNewTokens = 90, Seed = 1 };
            var s = pipe.Begin(req, x => { });
            var perFrame = new List<long>();
            while (!s.Done)
            {
                long n0 = Device.C.Schedules;
                double t0 = Device.Clock;
                s.Tick(() => Device.Clock - t0 >= 0.004, 64);
                Device.EndFrame();
                perFrame.Add(Device.C.Schedules - n0);
            }
            long worst = 0; foreach (var n in perFrame) worst = Math.Max(worst, n);
            Console.WriteLine("COUNTS frame budget 4 ms at 1 ms/graph: " + perFrame.Count + " frames, at most " + worst + " graph calls in one frame");
            // one unit of work may start under budget and end over it: a flow chunk (encoder + solver) is 2 calls, HiFT 1
            Check(worst <= 4 + 2, "a frame scheduled " + worst + " graph calls with a 4-call budget");
            Check(perFrame.Count > 90 / 4, "frames " + perFrame.Count);
            s.Dispose(); runner.Dispose();
            Check(Device.C.LiveTensors == 0, "live tensors after Dispose");
        }

        // -- the speaker: leaks, cancellation, destroy --------------------------------------------------
        sealed class Frames
        {
            TaskCompletionSource<bool> next;
            CancellationTokenRegistration reg;
            public Task Next(CancellationToken t)
            {
                t.ThrowIfCancellationRequested();
                next = new TaskCompletionSource<bool>();
                var tcs = next;
                reg = t.Register(() => tcs.TrySetCanceled());
                return tcs.Task;
            }
            /// <summary>End the frame and resume the awaiting Speak (it runs until its next await).</summary>
            public void Advance() { Device.EndFrame(); var t = next; next = null; reg.Dispose(); if (t != null) t.TrySetResult(true); }
            public bool Waiting { get { return next != null; } }
        }

        static SpeakerLogic NewSpeaker(BundleManifest m, PipelineCase c, out Func<SentisGraphRunner> runnerOf)
        {
            SentisGraphRunner runner = null;
            runnerOf = () => runner;
            var logic = new SpeakerLogic(() =>
            {
                runner = SyntheticRunner(m);
                return SpeechPipeline.ForBundle(m, runner, c.Tokenizer, new FlowStage(m, runner, c.FlowNoise));  // as CosyVoiceSpeaker
            }, r => r.Dispose());
            logic.LoadVoice = name => { Check(name == "tiny", "voice " + name); return c.Voice; };
            logic.DefaultVoice = "tiny";
            logic.Clock = () => Device.Clock;
            logic.FrameBudgetSeconds = 0.004;
            logic.MaxNewTokens = 40;
            Device.GraphCost = g => 0.001;
            return logic;
        }

        static void HundredUtterances()
        {
            var m = TinyManifest();
            var c = new PipelineCase(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")), golden);
            Func<SentisGraphRunner> runnerOf;
            var logic = NewSpeaker(m, c, out runnerOf);
            logic.SplitText = false;  // the tiny tokenizer spells words in many tokens; pieces are tested in Paragraph
            var frames = new Frames();
            long baseline = -1, baseBytes = -1, workers = -1;
            int moves = 0, growths = 0;
            int cancelled = 0, finished = 0;
            for (int u = 0; u < 100; u++)
            {
                logic.Streaming = u % 2 == 0;
                logic.Seed = u;
                var cts = new CancellationTokenSource();
                var task = logic.Speak("Short line number " + u + ".", u % 3 == 0 ? "" : "tiny", cts.Token, frames.Next);
                int f = 0;
                while (!task.IsCompleted)
                {
                    if (u % 7 == 3 && f == 5) cts.Cancel();
                    frames.Advance();
                    Check(++f < 10000, "utterance " + u + " does not finish");
                }
                Check(task.Status == TaskStatus.RanToCompletion, "utterance " + u + ": " + task.Status + " " + (task.Exception == null ? "" : task.Exception.InnerException.Message));
                if (task.Result) finished++; else cancelled++;
                // the baseline moves only when an utterance used a graph for the first time (a new flow
                // bucket: its Worker, outputs and persistent inputs) or a larger input than any before
                // (persistent input tensors grow to the largest input seen); otherwise it must hold exactly
                if (Device.C.LiveWorkers != workers || Device.C.LiveTensors != baseline && baseline < 0)
                {
                    workers = Device.C.LiveWorkers; baseline = Device.C.LiveTensors; baseBytes = Device.C.LiveDeviceBytes; moves++;
                }
                if (Device.C.LiveDeviceBytes > baseBytes && Device.C.LiveTensors == baseline) { baseBytes = Device.C.LiveDeviceBytes; growths++; }
                Check(Device.C.LiveTensors == baseline && Device.C.LiveDeviceBytes == baseBytes,
                      "after utterance " + u + " (pooled " + runnerOf().PooledTensors + ", owned " + runnerOf().OwnedValues + "): " + Device.C.LiveTensors + " live tensors (" +
                      Device.C.LiveDeviceBytes + " device bytes), baseline " + baseline + " (" + baseBytes + ")");
            }
            Check(moves <= 3 && growths <= 3, "baseline moved " + moves + " times (new workers), input tensors grew " + growths + " times");
            Console.WriteLine("COUNTS 100 utterances: " + finished + " finished, " + cancelled + " cancelled, live tensors after each = " + baseline +
                              " (baseline moved " + moves + "x for new graphs, input capacity grew " + growths + "x)" +
                              " (" + baseBytes + " device bytes: workers' outputs, persistent inputs, shared zero cache)");
            Check(cancelled == 14 && finished == 86, finished + " finished, " + cancelled + " cancelled");
            Check(Device.C.BlockingReadbacks == 0, Device.C.BlockingReadbacks + " blocking readbacks in 100 frame-driven utterances");
            DestroyMidSpeak(logic, frames);
            bool threw = false;
            try { runnerOf().Run("llm_step", new Dictionary<string, GraphValue>()); } catch (ObjectDisposedException) { threw = true; }
            Check(threw, "the disposed runner must refuse to create workers");
            threw = false;
            try { logic.Speak("again", "tiny", CancellationToken.None, frames.Next).Wait(); } catch (AggregateException e) { threw = e.InnerException is ObjectDisposedException; }
            Check(threw, "Speak on a destroyed speaker throws ObjectDisposedException");
        }

        /// <summary>Bistream through SpeakerLogic.SpeakStream: text pushed a word per frame from a
        /// TextFeed; every 3rd stream cancelled mid-way; live tensors back to the baseline after each;
        /// then a destroy mid-stream frees everything.</summary>
        static void SpeakStreams() { SpeakStreamsOn(new PipelineCase(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")), golden), ""); }

        static void SpeakStreamsCosyVoice3()
        {
            SpeakStreamsOn(new PipelineCase(Load(Path.Combine(golden, "cv3_pipeline_stream_zero_shot.json")), golden), "cosyvoice3 ");
        }

        /// <summary>Finished/cancelled utterances and the live-tensor baseline after each: the baseline
        /// may move only when new workers appear (a graph seen for the first time), at most 3 times.</summary>
        sealed class UtteranceTally
        {
            public int Finished, Cancelled, Moves;
            public long Baseline = -1;
            long workers = -1;

            public void Record(Task<bool> task, string what)
            {
                Check(task.Status == TaskStatus.RanToCompletion, what + ": " + task.Status + " " + (task.Exception == null ? "" : task.Exception.InnerException.ToString()));
                if (task.Result) Finished++; else Cancelled++;
                if (Device.C.LiveWorkers != workers) { workers = Device.C.LiveWorkers; Baseline = Device.C.LiveTensors; Moves++; }
                Check(Device.C.LiveTensors == Baseline, "after " + what + ": " + Device.C.LiveTensors + " live tensors, baseline " + Baseline);
            }

            public void CheckCounts(int finished, int cancelled, int samples)
            {
                Check(Finished == finished && Cancelled == cancelled && samples > 0, Finished + " finished, " + Cancelled + " cancelled, " + samples + " samples");
                Check(Moves <= 3, "baseline moved " + Moves + " times");
            }
        }

        static void SpeakStreamsOn(PipelineCase c, string label)
        {
            var m = c.Manifest;
            Func<SentisGraphRunner> runnerOf;
            var logic = NewSpeaker(m, c, out runnerOf);
            logic.MaxNewTokens = 60;
            var frames = new Frames();
            var tally = new UtteranceTally();
            int audio = 0;
            logic.OnAudio = x => audio += x.Length;
            var words = "Once upon a time, in a village by the sea, there was a boat.".Split(' ');
            for (int u = 0; u < 9; u++)
            {
                logic.Seed = u;
                var feed = new TextFeed();
                var cts = new CancellationTokenSource();
                var task = logic.SpeakStream(feed, "tiny", cts.Token, frames.Next);
                int f = 0, w = 0;
                while (!task.IsCompleted)
                {
                    if (w < words.Length) feed.Push(words[w++] + " ");
                    else if (!feed.Ended) feed.End();
                    if (u % 3 == 1 && f == 12) cts.Cancel();
                    frames.Advance();
                    Check(++f < 20000, "stream " + u + " does not finish");
                }
                tally.Record(task, "stream " + u);
            }
            tally.CheckCounts(6, 3, audio);
            Console.WriteLine("COUNTS " + label + "bistream speaker: " + tally.Finished + " finished, " + tally.Cancelled + " cancelled, live tensors after each = " + tally.Baseline +
                              "; blocking readbacks in a frame-driven bistream golden = " + BistreamBlocking);
            var feed2 = new TextFeed();
            var t2 = logic.SpeakStream(feed2, "tiny", CancellationToken.None, frames.Next);
            feed2.Push("One more stream that ");
            for (int f = 0; f < 8; f++) frames.Advance();
            Check(!t2.IsCompleted, "the stream should still run (waiting for text)");
            logic.Destroy();
            frames.Advance();
            Check(t2.IsCompleted && t2.Status == TaskStatus.RanToCompletion && !t2.Result, "SpeakStream after destroy: " + t2.Status);
            Check(Device.C.LiveTensors == 0 && Device.C.LiveWorkers == 0 && Device.C.LiveDeviceBytes == 0,
                  "after destroy: " + Device.C.LiveTensors + " tensors, " + Device.C.LiveWorkers + " workers, " + Device.C.LiveDeviceBytes + " device bytes");
        }

        /// <summary>A streamed utterance (normal and bistream) cancelled at frame k — every frame at which
        /// a flow/HiFT job is in flight, and every 6th frame otherwise — at a 2-frame readback latency:
        /// afterwards the runner has no live value (every embedding, step output, cache, flow mel and
        /// HiFT output in flight was freed).</summary>
        static void CancelEveryFrame()
        {
            var c = new PipelineCase(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")), golden);
            int inFlight = CancelPoints(TinyManifest(), c, new[] { false, true }, "");
            Check(inFlight >= 4, "only " + inFlight + " cancellations hit a flow/HiFT job in flight");
        }

        /// <summary>The same on a cosyvoice3 bundle (the causal vocoder's calls in flight too).</summary>
        static void CancelEveryFrameCosyVoice3()
        {
            var c = new PipelineCase(Load(Path.Combine(golden, "cv3_pipeline_stream_zero_shot.json")), golden);
            int inFlight = CancelPoints(c.Manifest, c, new[] { false, true }, "cosyvoice3 ");
            Check(inFlight >= 2, "only " + inFlight + " cancellations hit a flow/vocoder job in flight");
        }

        /// <summary>Cancels at every in-flight frame and every 6th frame; returns how many hit a flow/vocoder job in flight.</summary>
        static int CancelPoints(BundleManifest m, PipelineCase c, bool[] bistreamModes, string label)
        {
            int inFlight = 0, points = 0;
            foreach (var bistream in bistreamModes)
            {
                var busy = new HashSet<int>();
                int length = 0;
                for (int pass = 0; pass < 2; pass++)
                    for (int k = 0; pass == 0 ? k == 0 : k <= length; k++)
                    {
                        if (pass == 1 && k % 6 != 0 && !busy.Contains(k)) continue;
                        Device.Reset();
                        Device.ReadbackLatencyFrames = 2;
                        var runner = SyntheticRunner(m);
                        var pipe = SpeechPipeline.ForBundle(m, runner, c.Tokenizer, new FlowStage(m, runner, c.FlowNoise));
                        var req = new SynthesisRequest { Text = "A short line.", Voice = c.Voice, Mode = SynthesisMode.ZeroShot, Streaming = true, MaxNewTokens = 44, Seed = 1 };
                        var s = bistream ? pipe.BeginBistream(req, x => { }) : pipe.Begin(req, x => { });
                        if (bistream) { s.PushText("A short "); s.PushText("line, and more."); s.EndText(); }
                        int f = 0;
                        while (!s.Done && (pass == 0 || f < k))
                        {
                            s.Tick(() => false, 4); Device.EndFrame(); f++;
                            if (pass == 0 && s.VocodingInFlight) busy.Add(f);
                        }
                        if (pass == 0) length = f;
                        if (s.VocodingInFlight) inFlight++;
                        s.Cancel();
                        s.Dispose();
                        Check(runner.LiveValues == 0, label + (bistream ? "bistream" : "stream") + " cancelled at frame " + k + ": " + runner.LiveValues + " values still live");
                        runner.Dispose();
                        Check(Device.C.LiveTensors == 0, "live tensors after Dispose");
                        if (pass == 1) points++;
                    }
            }
            Console.WriteLine("COUNTS " + label + "cancel points: " + points + ", " + inFlight + " with flow/vocoder readbacks in flight");
            return inFlight;
        }

        /// <summary>SpeakerLogic on a cosyvoice3 bundle, as CosyVoiceSpeaker builds it (SpeechPipeline.ForBundle):
        /// 12 utterances (streamed and whole, zero-shot and cross-lingual, every 4th cancelled mid-way) at
        /// a 1 ms cost per graph call and a 4 ms frame budget: each finishes within its frames, no readback
        /// blocks (Tick never waits), live tensors return to the baseline after each; a destroy
        /// mid-Speak frees everything.</summary>
        static void CosyVoice3Speaker()
        {
            var c = new PipelineCase(Load(Path.Combine(golden, "cv3_pipeline_stream_zero_shot.json")), golden);
            var m = c.Manifest;
            Func<SentisGraphRunner> runnerOf;
            var logic = NewSpeaker(m, c, out runnerOf);
            logic.SplitText = false;
            Check(logic.Pipeline is CosyVoice3Pipeline && logic.Pipeline.SampleRate == 24000, "the speaker built " + logic.Pipeline.GetType().Name);
            var frames = new Frames();
            var tally = new UtteranceTally();
            int samples = 0, maxFrames = 0;
            logic.OnAudio = x => samples += x.Length;
            for (int u = 0; u < 12; u++)
            {
                logic.Streaming = u % 2 == 0;
                logic.Mode = u % 3 == 2 ? SynthesisMode.CrossLingual : SynthesisMode.ZeroShot;
                logic.Seed = u;
                var cts = new CancellationTokenSource();
                var task = logic.Speak("Short line number " + u + ".", "tiny", cts.Token, frames.Next);
                int f = 0;
                while (!task.IsCompleted)
                {
                    if (u % 4 == 1 && f == 6) cts.Cancel();
                    frames.Advance();
                    Check(++f < 10000, "utterance " + u + " does not finish");
                }
                maxFrames = Math.Max(maxFrames, f);
                tally.Record(task, "utterance " + u);
            }
            tally.CheckCounts(9, 3, samples);
            Check(Device.C.BlockingReadbacks == 0, Device.C.BlockingReadbacks + " blocking readbacks in frame-driven cosyvoice3 utterances");
            Console.WriteLine("COUNTS cosyvoice3 speaker: " + tally.Finished + " finished, " + tally.Cancelled + " cancelled, " + samples + " samples, at most " + maxFrames +
                              " frames per utterance, live tensors after each = " + tally.Baseline + ", blocking readbacks = " + Device.C.BlockingReadbacks);
            DestroyMidSpeak(logic, frames);
        }

        /// <summary>Destroy mid-Speak: the suspended Speak returns false and touches nothing; everything is freed.</summary>
        static void DestroyMidSpeak(SpeakerLogic logic, Frames frames)
        {
            var task = logic.Speak("One more line that will not finish.", "tiny", CancellationToken.None, frames.Next);
            for (int f = 0; f < 6; f++) frames.Advance();
            Check(!task.IsCompleted && frames.Waiting, "Speak should still run");
            logic.Destroy();
            frames.Advance();
            Check(task.IsCompleted && task.Status == TaskStatus.RanToCompletion && !task.Result, "Speak after destroy: " + task.Status);
            Check(Device.C.LiveTensors == 0 && Device.C.LiveWorkers == 0 && Device.C.LiveDeviceBytes == 0,
                  "after destroy: " + Device.C.LiveTensors + " tensors, " + Device.C.LiveWorkers + " workers, " + Device.C.LiveDeviceBytes + " device bytes");
        }

        static void DefaultVoice()
        {
            Check(SpeakerLogic.VoiceName("", "alice") == "alice" && SpeakerLogic.VoiceName(null, "alice") == "alice" && SpeakerLogic.VoiceName("bob", "alice") == "bob", "voice choice");
            var m = TinyManifest();
            var c = new PipelineCase(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")), golden);
            Func<SentisGraphRunner> runnerOf;
            var logic = NewSpeaker(m, c, out runnerOf);
            var frames = new Frames();
            var t = logic.Speak("Hello.", "", CancellationToken.None, frames.Next);
            while (!t.IsCompleted) frames.Advance();
            Check(t.Status == TaskStatus.RanToCompletion && t.Result, "zero-shot Speak(text, \"\") " + t.Status + (t.Exception == null ? "" : " " + t.Exception.InnerException.Message));
            logic.Destroy();
        }

        static void Paragraph()
        {
            var m = TinyManifest();
            var c = new PipelineCase(Load(Path.Combine(golden, "pipeline_stream_zero_shot.json")), golden);
            Func<SentisGraphRunner> runnerOf;
            var logic = NewSpeaker(m, c, out runnerOf);
            logic.MaxNewTokens = 30;
            var text = "Hello there. At 10:30 it is $5, or 3.5%. We go now!";
            var pieces = logic.Pipeline.Pieces(new SynthesisRequest { Text = text, Voice = c.Voice, Mode = SynthesisMode.ZeroShot });
            Check(pieces.Count >= 3, pieces.Count + " pieces: " + string.Join(" | ", pieces.ToArray()));
            Check(string.Join(" ", pieces.ToArray()).Contains("At ten thirty it is five dollars, or three point five percent."), "normalised: " + string.Join(" | ", pieces.ToArray()));
            int samples = 0;
            logic.OnAudio = x => samples += x.Length;
            var frames = new Frames();
            var t = logic.Speak(text, "tiny", CancellationToken.None, frames.Next);
            while (!t.IsCompleted) frames.Advance();
            Check(t.Status == TaskStatus.RanToCompletion && t.Result, "Speak " + t.Status + (t.Exception == null ? "" : " " + t.Exception.InnerException.Message));
            Check(Device.SchedulesOf["llm_special_embedding"] == pieces.Count, Device.SchedulesOf["llm_special_embedding"] + " LLM sessions for " + pieces.Count + " pieces");
            Check(samples > 0, "no audio");
            Console.WriteLine("COUNTS paragraph: " + pieces.Count + " pieces: " + string.Join(" | ", pieces.ToArray()));
            logic.Destroy();
            Check(Device.C.LiveTensors == 0, "live tensors after destroy");
        }

        // -- API surface --------------------------------------------------------------------------------
        static void DumpApi()
        {
            var asm = typeof(Worker).Assembly;
            foreach (var t in asm.GetExportedTypes())
            {
                if (t.Namespace != "Unity.InferenceEngine") continue;
                var name = t.FullName.Replace("+", ".");
                Console.WriteLine("TYPE " + name);
                foreach (var mi in t.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
                {
                    var ps = new List<string>();
                    var mb = mi as MethodBase;
                    if (mb != null)
                    {
                        if (mb.IsSpecialName && !(mb is ConstructorInfo) && !mb.Name.StartsWith("op_")) continue;  // accessors
                        foreach (var p in mb.GetParameters()) ps.Add(p.ParameterType.Name.Replace("&", ""));
                    }
                    var pi = mi as PropertyInfo;
                    if (pi != null) foreach (var p in pi.GetIndexParameters()) ps.Add(p.ParameterType.Name);
                    if (mi is Type) continue;
                    Console.WriteLine("MEMBER " + name + " " + mi.MemberType + " " + mi.Name + " (" + string.Join(",", ps.ToArray()) + ")");
                }
            }
        }
    }
}
