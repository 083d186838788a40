// A CosyVoice3 pipeline golden trace (kind `cv3_pipeline`, tests/unity/golden_cv3.py) replayed by
// Core's CosyVoice3Pipeline: the trace's manifest, tokenizer, voice and flow noise are loaded by
// PipelineCase; this file builds the CosyVoice3 request (replayed uniforms, provenance-tagged
// uniform noise draws of the causal vocoder's growing table) and checks what the C# pipeline did: the
// same graph calls with the same input bytes, the C# front-end's ids (system prompt +
// <|endofprompt|>), the tokens the flow saw (long silences cut), stop reason, uniforms and noise
// tables consumed, PCM chunks (sha256).
using System;
using System.Collections.Generic;
using SentisTts.Core;
using SentisTts.Core.Flow;
using SentisTts.Core.Llm;
using SentisTts.Core.Pipeline;
using SentisTts.Core.Sampling;

namespace SentisTts.Tests
{
    public static class CosyVoice3Case
    {
        static void Check(bool ok, string what) { if (!ok) throw new Exception(what); }
        static string Ids(IList<int> x) { var a = new string[x.Count]; for (int i = 0; i < a.Length; i++) a[i] = x[i].ToString(); return string.Join(",", a); }

        public static void Run(JsonObject trace, string golden)
        {
            var c = new PipelineCase(trace, golden);
            var p = c.Params;
            var runner = new ReplayRunner(trace);
            Check(ModelFamilies.Of(c.Manifest) == ModelFamily.CosyVoice3, "trace manifest family " + c.Manifest.Family);
            var pipe = new CosyVoice3Pipeline(c.Manifest, runner, c.Tokenizer, new FlowStage(c.Manifest, runner, c.FlowNoise));
            var req = new SynthesisRequest
            {
                Text = p.Str("text"), Voice = c.Voice, Mode = PipelineCase.ParseMode(p.Str("mode")), InstructText = p.Str("instruct") ?? "",
                Streaming = p.Bool("streaming"), MaxNewTokens = p.Get("max_new_tokens") == null ? -1 : p.Int("max_new_tokens"),
            };
            List<int> textIds, promptText, promptSpeech;
            pipe.AssemblePrompt(req, out textIds, out promptText, out promptSpeech);
            Check(Ids(textIds) == Ids(Json.IntArray(p.Get("text_ids"))), "text ids " + Ids(textIds));
            Check(Ids(promptText) == Ids(Json.IntArray(p.Get("llm_prompt_text_ids"))), "LLM prompt text ids " + Ids(promptText));
            Check(Ids(promptSpeech) == Ids(Json.IntArray(p.Get("llm_prompt_speech_tokens"))), "LLM prompt speech tokens");
            Check(pipe.TokenCap(req, pipe.FlowPromptFor(req)) == p.Int("token_cap"), "token cap " + pipe.TokenCap(req, pipe.FlowPromptFor(req)));
            var uniforms = new List<double>();
            foreach (var x in Json.LongArray(p.Get("uniforms_2p53"))) uniforms.Add(x / 9007199254740992.0);
            req.Uniforms = new ReplayUniforms(uniforms);
            var draws = p.Arr("noise_draws");
            long stride = p.Long("noise_tag_stride");
            int nDraws = 0;
            req.Noise = frames =>
            {
                Check(nDraws < draws.Count, "more noise tables than the trace's " + draws.Count);
                var shape = Json.IntArray(((JsonObject)draws[nDraws]).Get("shape"));
                Check(shape.Length == 2 && shape[0] == pipe.Hift.Hop * frames && shape[1] == pipe.Hift.H,
                      "noise draw " + nDraws + " for " + frames + " frames, trace shape " + GraphValue.ShapeText(shape));
                var t = new float[shape[0] * shape[1]];
                for (int i = 0; i < t.Length; i++) t[i] = (float)(1 + nDraws * stride + i);
                nDraws++;
                return t;
            };
            var pcm = new List<float[]>();
            Generation g;
            try { g = pipe.Synthesize(req, pcm.Add); }
            catch (Exception) { if (runner.Failures.Count > 0) Report(runner); throw; }
            Report(runner);
            var res = trace.Obj("result");
            Check(Ids(g.Tokens) == Ids(Json.IntArray(res.Get("tokens"))), "flow tokens [" + Ids(g.Tokens) + "]");
            Check(g.StopReason == res.Str("stop_reason"), "stop reason " + g.StopReason + ", trace " + res.Str("stop_reason"));
            Check(((ReplayUniforms)req.Uniforms).Used == uniforms.Count, "used " + ((ReplayUniforms)req.Uniforms).Used + " uniforms, the trace " + uniforms.Count);
            Check(nDraws == draws.Count, nDraws + " noise tables, the trace " + draws.Count);
            var want = res.Arr("pcm");
            Check(pcm.Count == want.Count, pcm.Count + " PCM chunks, the trace " + want.Count);
            for (int i = 0; i < pcm.Count; i++)
            {
                var e = (JsonObject)want[i];
                Check(pcm[i].Length == Json.IntArray(e.Get("shape"))[0], "chunk " + i + ": " + pcm[i].Length + " samples, trace " + Json.IntArray(e.Get("shape"))[0]);
                Check(new HostTensor(new[] { pcm[i].Length }, pcm[i]).Sha256() == e.Str("sha256"), "chunk " + i + ": PCM bytes differ");
            }
        }

        static void Report(ReplayRunner r)
        {
            Check(r.Failures.Count == 0, "call sequence differs from the trace:\n" + string.Join("\n", r.Failures.ToArray()));
            Check(r.Next == r.CallCount, "Core made " + r.Next + " graph calls, the trace has " + r.CallCount);
            Check(r.Leaked == 0, r.Leaked + " graph values were not disposed");
        }
    }
}
