// One full-pipeline golden trace (kinds `pipeline`, `pipeline_bistream` of CosyVoice2 and
// `cv3_pipeline`, `cv3_pipeline_bistream` of CosyVoice3) as a test case: its manifest, tokenizer,
// voice, flow noise, the request (replayed uniforms, provenance-tagged vocoder noise; the C#
// front-end's ids checked against the trace's) and the checks of the result (the flow's tokens, stop
// reason, uniforms and noise draws consumed, PCM chunk bytes). Shared by the Core replay test and the
// Sentis stand-in test.
using System;
using System.Collections.Generic;
using System.IO;
using SentisTts.Core;
using SentisTts.Core.Llm;
using SentisTts.Core.Pipeline;
using SentisTts.Core.Sampling;
using SentisTts.Core.Text;

namespace SentisTts.Tests
{
    public sealed class PipelineCase
    {
        public readonly JsonObject Trace, Params;
        public readonly BundleManifest Manifest;
        public readonly Qwen2Tokenizer Tokenizer;
        public readonly Voice Voice;
        public readonly NpyArray FlowNoise;
        List<double> uniforms;
        List<object> draws;
        public int NoiseDraws;

        public PipelineCase(JsonObject trace, string golden)
        {
            Trace = trace;
            Manifest = BundleManifest.Parse(trace.Obj("manifest").ToJsonText());
            Params = trace.Obj("params");
            Tokenizer = Qwen2Tokenizer.FromDirectory(Path.Combine(golden, Params.Str("tokenizer_dir")));
            using (var f = File.OpenRead(Path.Combine(golden, Params.Str("voice_file")))) Voice = Voice.FromNpz("tiny", f);
            FlowNoise = Npy.Read(File.ReadAllBytes(Path.Combine(golden, Params.Str("flow_noise_file"))));
        }

        /// <summary>The trace is of a CosyVoice3 pipeline (its kind starts with cv3_; its manifest's family must say so).</summary>
        public bool IsCosyVoice3
        {
            get
            {
                bool cv3 = Trace.Str("kind").StartsWith("cv3_", StringComparison.Ordinal);
                Check(cv3 == (ModelFamilies.Of(Manifest) == ModelFamily.CosyVoice3), "trace kind " + Trace.Str("kind") + ", manifest family " + Manifest.Family);
                return cv3;
            }
        }

        /// <summary>A bistream trace (kind pipeline_bistream, or cv3_pipeline_bistream).</summary>
        public bool IsBistream { get { return Trace.Str("kind").EndsWith("pipeline_bistream", StringComparison.Ordinal); } }

        /// <summary>A bistream trace's text chunks.</summary>
        public List<string> Chunks { get { return Params.Arr("text_chunks").ConvertAll(x => (string)x); } }

        /// <summary>Run a bistream trace's session: `schedule` 0 pushes every chunk and ends the text
        /// before the first tick, 1 pushes one chunk only when the schedule waits for text (late text),
        /// 2 pushes one chunk per frame. `tick` runs one frame's work and returns Done; `endFrame` ends it.</summary>
        public void DriveBistream(SpeechSession s, int schedule, Func<bool> tick, Action endFrame, int maxFrames = 100000)
        {
            var chunks = Chunks;
            int next = 0, frames = 0;
            if (schedule == 0) { foreach (var c in chunks) s.PushText(c); s.EndText(); next = chunks.Count + 1; }
            while (true)
            {
                if (next <= chunks.Count && (schedule == 2 || (schedule == 1 && s.NeedsText)))
                {
                    if (next < chunks.Count) s.PushText(chunks[next]); else s.EndText();
                    next++;
                }
                if (tick()) break;
                endFrame();
                Check(++frames < maxFrames, "bistream: no progress after " + maxFrames + " frames");
            }
            // a stream stopped by EOS read all of its text; one stopped by the cap may stop earlier
            if (Trace.Obj("result").Str("stop_reason") == "stop_token")
                Check(next > chunks.Count, "bistream finished before all text and EndText were pushed (" + next + " of " + (chunks.Count + 1) + ")");
        }

        static void Check(bool ok, string what) { if (!ok) throw new Exception(what); }
        static string Ids(IList<int> x) { var a = new string[x.Count]; for (int i = 0; i < a.Length; i++) a[i] = x[i].ToString(); return string.Join(",", a); }
        static string Sha(float[] x, int[] shape) { return new HostTensor(shape, x).Sha256(); }

        public static SynthesisMode ParseMode(string m)
        {
            switch (m)
            {
                case "zero_shot": return SynthesisMode.ZeroShot;
                case "cross_lingual": return SynthesisMode.CrossLingual;
                case "instruct2": return SynthesisMode.Instruct;
                case "sft": return SynthesisMode.Sft;
                default: throw new Exception("unknown mode " + m);
            }
        }

        /// <summary>The trace's request; also checks that the C# front-end gives the trace's ids.</summary>
        public SynthesisRequest Request(SpeechPipeline pipe)
        {
            var cv2 = pipe as TtsPipeline;
            var cv3 = pipe as CosyVoice3Pipeline;
            int hop = cv2 != null ? cv2.Hift.Hop : cv3.Hift.Hop, harmonics = cv2 != null ? cv2.Hift.H : cv3.Hift.H;
            var p = Params;
            var req = new SynthesisRequest
            {
                Text = IsBistream ? "" : p.Str("text"), Voice = Voice, Mode = ParseMode(p.Str("mode")), InstructText = p.Str("instruct") ?? "",
                Streaming = p.Bool("streaming"), MaxNewTokens = p.Get("max_new_tokens") == null ? -1 : p.Int("max_new_tokens"),
            };
            List<int> textIds, promptText, promptSpeech;
            pipe.AssemblePrompt(req, out textIds, out promptText, out promptSpeech);
            if (IsBistream)
            {
                textIds = new List<int>();
                foreach (var chunk in Chunks) textIds.AddRange(pipe.Tokenizer.Encode(chunk));
            }
            Check(Ids(textIds) == Ids(Json.IntArray(p.Get("text_ids"))), "text ids " + Ids(textIds));
            Check(Ids(promptText) == Ids(Json.IntArray(p.Get("llm_prompt_text_ids"))), "LLM prompt text ids " + Ids(promptText));
            Check(Ids(promptSpeech) == Ids(Json.IntArray(p.Get("llm_prompt_speech_tokens"))), "LLM prompt speech tokens");
            Check(pipe.TokenCap(req, pipe.FlowPromptFor(req)) == p.Int("token_cap"), "token cap " + pipe.TokenCap(req, pipe.FlowPromptFor(req)));
            uniforms = new List<double>();
            foreach (var x in Json.LongArray(p.Get("uniforms_2p53"))) uniforms.Add(x / 9007199254740992.0);
            req.Uniforms = new ReplayUniforms(uniforms);
            draws = p.Arr("noise_draws");
            long stride = p.Long("noise_tag_stride");
            NoiseDraws = 0;
            req.Noise = frames =>
            {
                Check(NoiseDraws < draws.Count, "more vocoder noise draws than the trace's " + draws.Count);
                var shape = Json.IntArray(((JsonObject)draws[NoiseDraws]).Get("shape"));  // (1,) hop * frames, harmonics
                int n = shape.Length;
                Check(shape[n - 2] == hop * frames && shape[n - 1] == harmonics, "noise draw " + NoiseDraws + " for " + frames + " frames, trace shape " + GraphValue.ShapeText(shape));
                var x = new float[shape[n - 2] * shape[n - 1]];
                for (int i = 0; i < x.Length; i++) x[i] = (float)(1 + NoiseDraws * stride + i);
                NoiseDraws++;
                return x;
            };
            return req;
        }

        public void Verify(Generation g, SynthesisRequest req, List<float[]> pcm)
        {
            var res = Trace.Obj("result");
            Check(Ids(g.Tokens) == Ids(Json.IntArray(res.Get("tokens"))), "tokens [" + Ids(g.Tokens) + "]");
            Check(g.StopReason == res.Str("stop_reason"), "stop reason " + g.StopReason + ", trace " + res.Str("stop_reason"));
            Check(((ReplayUniforms)req.Uniforms).Used == uniforms.Count, "used " + ((ReplayUniforms)req.Uniforms).Used + " uniforms, the trace " + uniforms.Count);
            Check(NoiseDraws == draws.Count, NoiseDraws + " noise draws, the trace " + draws.Count);
            var want = res.Arr("pcm");
            Check(pcm.Count == want.Count, pcm.Count + " PCM chunks, the trace " + want.Count);
            for (int i = 0; i < pcm.Count; i++)
            {
                var e = (JsonObject)want[i];
                Check(pcm[i].Length == Json.IntArray(e.Get("shape"))[0], "chunk " + i + ": " + pcm[i].Length + " samples, trace " + Json.IntArray(e.Get("shape"))[0]);
                Check(Sha(pcm[i], new[] { pcm[i].Length }) == e.Str("sha256"), "chunk " + i + ": PCM bytes differ");
            }
        }
    }
}
