// Flow (speech tokens -> mel) over an IGraphRunner. Mirrors runtime_ref/flow.py token2mel:
// smallest mel-length bucket that fits, zero-padded tokens with token/conv masks, flow_encoder_N,
// then the unrolled solver graph (one call) or the step graph once per Euler step; the encoder
// outputs and the ODE state x stay with the runner (on the GPU with Sentis) — only the final mel
// is read back, asynchronously (Start returns a job polled in later frames; TokensToMel waits).
// Returns the new part of the mel (after the prompt frames).
using System;
using System.Collections.Generic;
using SentisTts.Core.Audio;
using SentisTts.Core.Pipeline;

namespace SentisTts.Core.Flow
{
    public sealed class FlowStage : IAsyncFlowStage
    {
        readonly IGraphRunner runner;
        readonly BundleManifest manifest;
        readonly JsonObject comp;
        readonly float[] noiseTable;  // (1, n_mels, maxN) row-major, the bundle's fixed flow noise
        readonly int noiseFrames;
        public readonly int Vocab, Ratio, Lookahead, NMels, SpkDim;
        public readonly int[] MelLens;
        readonly float[] ts, dts;

        /// <param name="noise">the array of the flow component's `noise_file` (shape (1, n_mels, frames))</param>
        public FlowStage(BundleManifest m, IGraphRunner runner, NpyArray noise)
        {
            this.runner = runner;
            manifest = m;
            comp = m.Component("flow");
            Vocab = comp.Int("vocab_size"); Ratio = comp.Int("token_mel_ratio"); Lookahead = comp.Int("pre_lookahead_len");
            NMels = comp.Int("n_mels"); SpkDim = comp.Int("spk_embed_dim");
            MelLens = Json.IntArray(comp.Get("mel_lens"));
            Array.Sort(MelLens);
            if (noise.Shape.Length != 3 || noise.Shape[1] != NMels) throw new SentisTtsException("flow noise table must have shape (1, " + NMels + ", frames)");
            noiseTable = noise.Floats; noiseFrames = noise.Shape[2];
            var t = comp.Arr("t"); var dt = comp.Arr("dt");
            ts = t == null ? new float[0] : t.ConvertAll(x => (float)((JsonNumber)x).AsDouble()).ToArray();
            dts = dt == null ? new float[0] : dt.ConvertAll(x => (float)((JsonNumber)x).AsDouble()).ToArray();
        }

        public int PickBucket(int neededFrames)
        {
            foreach (var n in MelLens) if (n >= neededFrames) return n;
            int mx = MelLens[MelLens.Length - 1];
            throw new SentisTtsException("token2mel: prompt + new speech need " + neededFrames + " mel frames but the largest flow graph takes " + mx +
                                         " (" + (mx / 2) + " tokens); split the text into shorter pieces or re-export with a larger --flow-len");
        }

        public Mel TokensToMel(IList<int> tokens, FlowPrompt prompt, bool streaming, bool finalize)
        {
            using (var job = Start(tokens, prompt, streaming, finalize)) return job.Wait();
        }

        /// <summary>Schedules the encoder and the solver (or its steps) at the first Poll, then waits
        /// without blocking for the mel readback (IAsyncFlowStage).</summary>
        public ReadbackJob<Mel> Start(IList<int> tokens, FlowPrompt prompt, bool streaming, bool finalize)
        {
            int P = prompt.Tokens.Length, nAll = P + tokens.Count;
            foreach (var x in tokens) if (x < 0 || x >= Vocab) throw new SentisTtsException("token2mel: tokens has ids outside 0.." + (Vocab - 1));
            if (prompt.Embedding.Length != SpkDim) throw new SentisTtsException("token2mel: spk_embedding must have " + SpkDim + " values, got " + prompt.Embedding.Length);
            int nEnc = finalize ? nAll : nAll - Lookahead;
            if (nEnc <= 0) throw new SentisTtsException("token2mel: need more than " + Lookahead + " tokens when finalize=False, got " + nAll);
            int M = nEnc * Ratio, F = prompt.MelFrames;
            if (F > M) throw new SentisTtsException("token2mel: prompt_mel has " + F + " frames but the tokens give only " + M);
            int N = PickBucket(nAll * Ratio);
            if (N > noiseFrames) throw new SentisTtsException("flow noise table has " + noiseFrames + " frames, bucket needs " + N);
            var toks = new int[tokens.Count];
            tokens.CopyTo(toks, 0);
            return new ReadbackJob<Mel>(job => Run(job, toks, prompt, streaming, nEnc, nAll, M, F, N));
        }

        IEnumerator<bool> Run(ReadbackJob<Mel> job, int[] tokens, FlowPrompt prompt, bool streaming, int nEnc, int nAll, int M, int F, int N)
        {
            int P = prompt.Tokens.Length, T = N / Ratio;
            var graphs = comp.Obj("graphs").Obj(N.ToString());
            var tok = new int[T]; var tokenMask = new float[T]; var convMask = new float[T];
            for (int i = 0; i < P; i++) tok[i] = prompt.Tokens[i];
            for (int i = 0; i < tokens.Length; i++) tok[P + i] = tokens[i];
            for (int i = 0; i < nEnc; i++) tokenMask[i] = 1f;
            for (int i = 0; i < nAll; i++) convMask[i] = 1f;
            var stream = new HostTensor(new[] { 1 }, new[] { streaming ? 1f : 0f });
            var cond = new float[NMels * N];
            for (int f = 0; f < F; f++) for (int c = 0; c < NMels; c++) cond[c * N + f] = prompt.Mel[f * NMels + c];  // (F, 80) -> (80, N)
            var melMask = new float[N];
            for (int i = 0; i < M; i++) melMask[i] = 1f;
            var noise = new float[NMels * N];
            for (int c = 0; c < NMels; c++) Array.Copy(noiseTable, c * noiseFrames, noise, c * N, N);

            var encFeeds = new Dictionary<string, GraphValue> {
                { "tokens", new HostTensor(new[] { 1, T }, tok) }, { "token_mask", new HostTensor(new[] { 1, T }, tokenMask) },
                { "conv_mask", new HostTensor(new[] { 1, T }, convMask) }, { "xvec", new HostTensor(new[] { 1, SpkDim }, prompt.Embedding) } };
            foreach (var i in manifest.Graph(graphs.Str("encoder")).Inputs)
                if (i.Name == "streaming") encFeeds["streaming"] = stream;  // CosyVoice3's encoder has none
            GraphValue x = null;
            GraphOutputs solved = null;
            try
            {
                using (var enc = runner.Run(graphs.Str("encoder"), encFeeds))
                {
                    var common = new Dictionary<string, GraphValue> {
                        { "mu", enc["mu"] }, { "cond", new HostTensor(new[] { 1, NMels, N }, cond) }, { "spks", enc["spks"] },
                        { "mel_mask", new HostTensor(new[] { 1, 1, N }, melMask) }, { "streaming", stream } };
                    if (graphs.Str("solve") != null)
                    {
                        var feeds = new Dictionary<string, GraphValue>(common);
                        feeds["noise"] = new HostTensor(new[] { 1, NMels, N }, noise);
                        solved = runner.Run(graphs.Str("solve"), feeds);
                        x = solved["mel"];
                    }
                    else
                    {
                        x = new HostTensor(new[] { 1, NMels, N }, noise);
                        for (int s = 0; s < ts.Length; s++)
                        {
                            var feeds = new Dictionary<string, GraphValue>(common);
                            feeds["x"] = x;
                            feeds["t"] = new HostTensor(new[] { 1 }, new[] { ts[s] });
                            feeds["dt"] = new HostTensor(new[] { 1 }, new[] { dts[s] });
                            var o = runner.Run(graphs.Str("step"), feeds);
                            x.Dispose();
                            x = o.Take("x_next");
                            o.Dispose();
                        }
                    }
                }
                // the encoder's outputs are released; the mel comes back asynchronously
                var mel = HostTensor.Zeros(new[] { 1, NMels, N }, DType.Float32);
                runner.RequestRead(x);
                while (!job.Ready(runner, x, mel)) yield return false;
                // new part: frames F..M of (1, 80, N)
                var d = new float[NMels * (M - F)];
                for (int c = 0; c < NMels; c++) Array.Copy(mel.Floats, c * N + F, d, c * (M - F), M - F);
                job.Result = new Mel(NMels, M - F, d);
            }
            finally
            {
                if (solved != null) solved.Dispose();
                else if (x != null) x.Dispose();
            }
        }
    }
}
