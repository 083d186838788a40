// ZipVoice on the bundle (mirror of runtime_ref/zipvoice/pipeline.py and solve.py; pinned by the
// golden traces tests/golden/zipvoice_*.json):
//
//   prompt ids (baked with the voice) + text ids -> text_encoder_<S> (S = smallest token bucket
//   holding the ids and the trailing pad) -> frames = prompt + ceil(prompt_frames / prompt_ids ·
//   ids / speed) -> per-frame text condition (average token durations, the rest reads the pad) ->
//   fm_solve_<T> (the whole CFG + Euler solve in one graph, its time grid baked in at export; noise
//   and guidance are inputs) -> generated features / feat_scale -> vocos_<F> -> clamp to ±1, scaled by
//   prompt_rms / target_rms when the prompt was quieter than target_rms.
//
// Three graph calls per utterance; each result is read back without waiting (Tick: RequestRead /
// TryRead), so a game calls Tick once per frame. No streaming (ZipVoice solves the whole utterance);
// a text longer than one solve holds is split like runtime_ref (shared TextSplitter at TextBudget)
// and the pieces are joined with the official 0.1 s cross-fade.
using System;
using System.Collections.Generic;
using System.IO;
using SentisTts.Core.Pipeline;

namespace SentisTts.Core.ZipVoice
{
    /// <summary>A baked ZipVoice voice (voices/&lt;name&gt;.npz of `sentis-tts voice add`).</summary>
    public sealed class ZipVoiceVoice
    {
        public string Name, PromptText = "";
        public float[] PromptFeatures;  // (frames, feat_dim) row-major, log-mel before × feat_scale
        public int PromptFrames, FeatDim;
        public int[] PromptIds;          // the transcript's ids by the bundle's front-end (null: tokenize PromptText)
        public float PromptRms = -1f;    // < 0: unknown (no output scaling)

        public static ZipVoiceVoice FromNpz(string name, Stream npz)
        {
            var a = Npy.ReadNpz(npz);
            NpyArray x;
            var v = new ZipVoiceVoice { Name = name };
            if (!a.TryGetValue("prompt_features", out x) || x.Shape.Length != 2)
                throw new SentisTtsException("voice " + name + ": no (frames, 100) 'prompt_features' array (bake it with `sentis-tts voice add` on a zipvoice bundle)");
            v.PromptFeatures = x.Floats; v.PromptFrames = x.Shape[0]; v.FeatDim = x.Shape[1];
            if (a.TryGetValue("prompt_text", out x)) v.PromptText = x.Text ?? "";
            if (a.TryGetValue("prompt_ids", out x)) v.PromptIds = x.Ints;
            if (a.TryGetValue("prompt_rms", out x) && x.Floats != null && x.Floats.Length == 1) v.PromptRms = x.Floats[0];
            return v;
        }
    }

    public sealed class ZipVoiceRequest
    {
        public string Text;               // accent kana for japanese_accent bundles
        public ZipVoiceVoice Voice;
        public int Seed;
        public float Speed = 1f;
        /// <summary>(frames, feat_dim) initial noise of each solve (one per piece); null: seeded standard normal (GaussianNoise).</summary>
        public List<float[]> Noise;
        public float GuidanceScale = float.NaN;  // NaN: the bundle's constant
    }

    public sealed class ZipVoicePipeline
    {
        /// <summary>Official cross-fade between the pieces of a long text.</summary>
        public const double CrossFadeSeconds = 0.1;
        public readonly BundleManifest Manifest;
        public readonly IGraphRunner Runner;
        public readonly ZipVoiceTokenizer Tokenizer;
        public readonly int SampleRate, PadId, FeatDim, NumStep, Hop;
        public readonly float FeatScale, GuidanceScale;
        public readonly double TargetRms;
        readonly int[] tokenLens, frameLens, vocosLens;

        public ZipVoicePipeline(BundleManifest manifest, IGraphRunner runner, ZipVoiceTokenizer tokenizer)
        {
            ModelFamilies.Require(manifest, ModelFamily.ZipVoice, "ZipVoicePipeline");
            Manifest = manifest; Runner = runner; Tokenizer = tokenizer;
            var k = manifest.Constants;
            SampleRate = k.ContainsKey("sample_rate") ? k.Int("sample_rate") : 24000;
            FeatScale = (float)k.Double("feat_scale");
            TargetRms = k.Double("target_rms");
            GuidanceScale = (float)k.Double("guidance_scale");
            var te = manifest.Component("text_encoder");
            var fm = manifest.Component("fm_decoder");
            var voc = manifest.Component("vocos");
            PadId = te.Int("pad_id");
            tokenLens = Sorted(Json.IntArray(te.Get("token_lens")));
            FeatDim = fm.Int("feat_dim");
            NumStep = fm.Int("num_step");
            frameLens = Sorted(Json.IntArray(fm.Get("frame_lens")));
            vocosLens = Sorted(Json.IntArray(voc.Get("frame_lens")));
            Hop = voc.Int("hop_length");
        }

        static int[] Sorted(int[] a) { var b = (int[])a.Clone(); Array.Sort(b); return b; }

        static int Bucket(int[] lens, int n, string what)
        {
            foreach (var b in lens) if (b >= n) return b;
            throw new SentisTtsException(what + " needs " + n + ", the bundle's largest bucket holds " + lens[lens.Length - 1] +
                                         ": shorten the text (or export larger buckets)");
        }

        // -- host math (runtime_ref/zipvoice/solve.py), float32 step by step like numpy ---------------
        /// <summary>prompt + ceil(prompt_frames / prompt_tokens · tokens / speed), in float32.</summary>
        public static int TotalFrames(int promptFrames, int promptTokens, int tokens, float speed)
        {
            float f = (float)promptFrames / (float)Math.Max(promptTokens, 1);
            f = (float)(f * (float)tokens);
            f = (float)(f / speed);
            return promptFrames + (int)Math.Ceiling(f);
        }

        /// <summary>The token each frame reads: n_frames // n_tokens frames per token, the rest read the pad (index n_tokens).</summary>
        public static int[] TokenIndex(int nFrames, int nTokens)
        {
            int avg = nFrames / Math.Max(nTokens, 1);
            var idx = new int[nFrames];
            for (int f = 0; f < nFrames; f++) idx[f] = f < avg * nTokens ? f / Math.Max(avg, 1) : nTokens;
            return idx;
        }

        public List<int> PromptIds(ZipVoiceVoice v)
        {
            return v.PromptIds != null ? new List<int>(v.PromptIds) : Tokenizer.Ids(v.PromptText);
        }

        /// <summary>runtime_ref text_budget: most text ids per piece so that prompt ids + ids + pad fit the largest
        /// token bucket and prompt + generated frames the largest solve and Vocos buckets.</summary>
        public int TextBudget(int promptFrames, int promptTokens, float speed)
        {
            int n = tokenLens[tokenLens.Length - 1] - 1 - promptTokens;
            int maxT = frameLens[frameLens.Length - 1], maxV = vocosLens[vocosLens.Length - 1];
            while (n > 0)
            {
                int f = TotalFrames(promptFrames, promptTokens, n, speed);
                if (f <= maxT && f - promptFrames <= maxV) break;
                n--;
            }
            if (n < 1)
                throw new SentisTtsException("the voice's prompt (" + promptFrames + " frames, " + promptTokens + " ids) leaves no room for text in this " +
                                             "bundle's largest buckets; use a shorter prompt clip or export larger buckets");
            return n;
        }

        /// <summary>runtime_ref pieces: the text as it is when it fits one solve, else the shared splitter
        /// (Text.TextSplitter.Split) at TextBudget, counted in model ids.</summary>
        public List<string> Pieces(string text, ZipVoiceVoice v, float speed)
        {
            int budget = TextBudget(v.PromptFrames, PromptIds(v).Count, speed);
            Func<string, int> count = piece => Tokenizer.Ids(piece).Count;
            if (count(text) <= budget) return new List<string> { text };
            return Text.TextSplitter.Split(text, count, budget, budget);
        }

        /// <summary>Official cross_fade_concat: consecutive chunks overlap by min(fade, both lengths) samples,
        /// linear 1 -> 0 (numpy's float32 linspace) on the earlier, 1 - w on the later.</summary>
        public static float[] CrossFadeConcat(List<float[]> chunks, int fade)
        {
            if (chunks.Count == 0) return new float[0];
            var cur = chunks[0];
            for (int c = 1; c < chunks.Count; c++)
            {
                var nxt = chunks[c];
                int k = Math.Min(fade, Math.Min(cur.Length, nxt.Length));
                var o = new float[cur.Length + nxt.Length - Math.Max(k, 0)];
                if (k <= 0) { Array.Copy(cur, o, cur.Length); Array.Copy(nxt, 0, o, cur.Length, nxt.Length); cur = o; continue; }
                int head = cur.Length - k;
                Array.Copy(cur, o, head);
                double step = k > 1 ? -1.0 / (k - 1) : 0.0;
                for (int i = 0; i < k; i++)
                {
                    float w = i == k - 1 && k > 1 ? 0f : (float)(i * step + 1.0);
                    o[head + i] = (float)(cur[head + i] * w) + (float)(nxt[i] * (float)(1f - w));
                }
                Array.Copy(nxt, k, o, head + k, nxt.Length - k);
                cur = o;
            }
            return cur;
        }

        /// <summary>Whole utterance, waiting for each readback (tests, offline use). A game uses Begin + Tick.</summary>
        public float[] Synthesize(ZipVoiceRequest r)
        {
            using (var s = Begin(r))
            {
                while (!s.Tick()) { }
                return s.Audio;
            }
        }

        public Session Begin(ZipVoiceRequest r) { return new Session(this, r); }

        /// <summary>One utterance: per piece text encoder -> solve -> Vocos, each started when the previous
        /// result is on the host; the pieces joined with the official 0.1 s cross-fade.</summary>
        public sealed class Session : IDisposable
        {
            readonly ZipVoicePipeline p;
            readonly ZipVoiceRequest r;
            readonly List<int> promptIds;
            readonly GaussianNoise gauss;
            readonly List<float[]> wavs = new List<float[]>();
            List<int> ids;
            int piece, nPrompt, nFrames, totalFrames;
            int stage;  // 0 text encoder running, 1 solve running, 2 vocos running, 3 done
            GraphValue pending;
            HostTensor into;
            int S, T, Fv;
            public float[] Audio { get; private set; }
            public bool Done { get { return stage == 3; } }
            public readonly List<string> Pieces;
            /// <summary>Prompt + generated frames, summed over the pieces started so far.</summary>
            public int Frames { get { return totalFrames; } }

            internal Session(ZipVoicePipeline p, ZipVoiceRequest r)
            {
                this.p = p; this.r = r;
                if (r.Voice == null) throw new SentisTtsException("ZipVoice synthesis needs a voice (its prompt features and transcript)");
                if (r.Voice.FeatDim != p.FeatDim) throw new SentisTtsException("voice " + r.Voice.Name + " has " + r.Voice.FeatDim + " feature bins, the bundle " + p.FeatDim);
                promptIds = p.PromptIds(r.Voice);
                if (promptIds.Count == 0) throw new SentisTtsException("the voice's transcript has no token the model knows");
                Pieces = p.Pieces(r.Text ?? "", r.Voice, r.Speed);
                if (r.Noise != null && r.Noise.Count != Pieces.Count)
                    throw new SentisTtsException("the request gives noise for " + r.Noise.Count + " solves; this text needs " + Pieces.Count);
                gauss = new GaussianNoise(r.Seed, 1, p.FeatDim);
                nPrompt = r.Voice.PromptFrames;
                StartPiece();
            }

            void StartPiece()
            {
                var textIds = p.Tokenizer.Ids(Pieces[piece]);
                if (textIds.Count == 0) throw new SentisTtsException("the text has no token the model knows (check the language / tokens.txt)");
                ids = new List<int>(promptIds);
                ids.AddRange(textIds);
                nFrames = TotalFrames(nPrompt, promptIds.Count, textIds.Count, r.Speed);
                totalFrames += nFrames;
                T = Bucket(p.frameLens, nFrames, "prompt + speech frames");
                Fv = Bucket(p.vocosLens, nFrames - nPrompt, "the generated frames");
                S = Bucket(p.tokenLens, ids.Count + 1, "the text (prompt transcript + text + 1 pad)");
                var tok = new int[S];
                for (int i = 0; i < S; i++) tok[i] = i < ids.Count ? ids[i] : p.PadId;
                stage = 0;
                Start("text_encoder_" + S, "text_embed", new Dictionary<string, GraphValue> {
                    { "tokens", new HostTensor(new[] { 1, S }, tok) }, { "token_count", HostTensor.Scalar1(ids.Count) } });
            }

            void Start(string graph, string output, Dictionary<string, GraphValue> inputs)
            {
                using (var o = p.Runner.Run(graph, inputs)) pending = o.Take(output);
                into = HostTensor.Zeros(pending.Shape, pending.DType);
                p.Runner.RequestRead(pending);
            }

            bool Ready()
            {
                if (!p.Runner.TryRead(pending, into)) return false;
                pending.Dispose();
                pending = null;
                return true;
            }

            /// <summary>Never waits: advances when the running graph's result has arrived. Returns Done.</summary>
            public bool Tick()
            {
                if (Done || !Ready()) return Done;
                int F = p.FeatDim;
                if (stage == 0)
                {
                    // per-frame text condition from the encoder rows of the ids and the trailing pad
                    var emb = into.Floats;
                    var idx = TokenIndex(nFrames, ids.Count);
                    var cond = new float[T * F];
                    for (int f = 0; f < nFrames; f++) Array.Copy(emb, idx[f] * F, cond, f * F, F);
                    var speech = new float[T * F];
                    var pf = r.Voice.PromptFeatures;
                    for (int i = 0; i < nPrompt * F; i++) speech[i] = pf[i] * p.FeatScale;
                    var noise = r.Noise != null ? r.Noise[piece] : gauss.Next(nFrames);
                    if (noise.Length != nFrames * F) throw new SentisTtsException("noise has " + noise.Length + " values, the solve needs " + nFrames + " × " + F);
                    var x0 = new float[T * F];
                    Array.Copy(noise, x0, nFrames * F);
                    float g = float.IsNaN(r.GuidanceScale) ? p.GuidanceScale : r.GuidanceScale;
                    stage = 1;
                    Start("fm_solve_" + T, "features", new Dictionary<string, GraphValue> {
                        { "noise", new HostTensor(new[] { 1, T, F }, x0) }, { "text_condition", new HostTensor(new[] { 1, T, F }, cond) },
                        { "speech_condition", new HostTensor(new[] { 1, T, F }, speech) }, { "frame_count", HostTensor.Scalar1(nFrames) },
                        { "guidance_scale", new HostTensor(new[] { 1 }, new[] { g }) } });
                }
                else if (stage == 1)
                {
                    // generated frames / feat_scale, as (1, n_mels, F) for Vocos
                    var x1 = into.Floats;
                    int n = nFrames - nPrompt;
                    var feats = new float[F * Fv];
                    for (int f = 0; f < n; f++)
                        for (int c = 0; c < F; c++) feats[c * Fv + f] = x1[(nPrompt + f) * F + c] / p.FeatScale;
                    stage = 2;
                    Start("vocos_" + Fv, "waveform", new Dictionary<string, GraphValue> {
                        { "features", new HostTensor(new[] { 1, F, Fv }, feats) }, { "frame_count", HostTensor.Scalar1(n) } });
                }
                else
                {
                    var wav = into.Floats;
                    int len = p.Hop * (nFrames - nPrompt - 1);
                    var a = new float[len];
                    float scale = r.Voice.PromptRms >= 0 && r.Voice.PromptRms < p.TargetRms ? (float)(r.Voice.PromptRms / p.TargetRms) : 1f;
                    for (int i = 0; i < len; i++)
                    {
                        float x = Math.Max(-1f, Math.Min(1f, wav[i]));
                        a[i] = scale == 1f ? x : x * scale;
                    }
                    wavs.Add(a);
                    if (++piece < Pieces.Count) StartPiece();
                    else { Audio = CrossFadeConcat(wavs, (int)(CrossFadeSeconds * p.SampleRate)); stage = 3; }
                }
                return Done;
            }

            public void Dispose()
            {
                if (pending != null) { pending.Dispose(); pending = null; }
                stage = 3;
            }
        }
    }
}
