// HiFT vocoding over an IGraphRunner with one static graph of T mel frames. Mirrors
// runtime_ref/hift.py:
// - whole utterance: overlapping chunks (every chunk but the first starts `context` frames early,
//   every chunk but the last ends `context` frames late; first left-aligned, last right-aligned),
//   sine phase carried exactly (phase_ref one-hot at the last emitted frame, phase_in its phase),
//   noise = the matching slice of the utterance's noise; a mel of n <= T frames is one exact-length
//   call (zeros past n, graph input n_frames = n: the graph computes what the official vocoder
//   computes on exactly n frames; no edge padding);
// - streaming (CosyVoice2Model.token2wav): 8 cached mel frames, 3840 cached source samples
//   overwriting the start of the next call's source, symmetric Hamming cross-fade of 2x3840
//   samples, the last 3840 samples held back until the next call; every call at its exact length.
// Readbacks are asynchronous: Mel2WavJob / HiftStream.PushJob return jobs polled in later frames
// (one graph call per chunk, its three outputs requested at once); Mel2Wav / Push wait.
using System;
using System.Collections.Generic;

namespace SentisTts.Core.Audio
{
    /// <summary>Mel spectrogram (1, mels, frames), row-major: Data[c * Frames + t].</summary>
    public sealed class Mel
    {
        public readonly int Mels, Frames;
        public readonly float[] Data;
        public Mel(int mels, int frames, float[] data)
        {
            if (data.Length != mels * frames) throw new ArgumentException("mel data length " + data.Length + " != " + mels + "x" + frames);
            Mels = mels; Frames = frames; Data = data;
        }

        public Mel Slice(int from, int to)
        {
            int n = to - from;
            var d = new float[Mels * n];
            for (int c = 0; c < Mels; c++) Array.Copy(Data, c * Frames + from, d, c * n, n);
            return new Mel(Mels, n, d);
        }

        public static Mel Concat(Mel a, Mel b)
        {
            int n = a.Frames + b.Frames;
            var d = new float[a.Mels * n];
            for (int c = 0; c < a.Mels; c++)
            {
                Array.Copy(a.Data, c * a.Frames, d, c * n, a.Frames);
                Array.Copy(b.Data, c * b.Frames, d, c * n + a.Frames, b.Frames);
            }
            return new Mel(a.Mels, n, d);
        }

        /// <summary>Right-pad with zero frames to `frames` (the graph ignores them given n_frames).</summary>
        public Mel ZeroPad(int frames)
        {
            var d = new float[Mels * frames];
            for (int c = 0; c < Mels; c++) Array.Copy(Data, c * Frames, d, c * frames, Frames);
            return new Mel(Mels, frames, d);
        }
    }

    /// <summary>Noise for one vocoder call: (1, hop * frames, harmonics) floats.</summary>
    public delegate float[] NoiseSource(int frames);

    public sealed class HiftVocoder
    {
        readonly IGraphRunner runner;
        public readonly string Graph;
        public readonly int T, Hop, H, NMels, Context, SourceCache, MelCache;
        public int Calls { get; private set; }

        public HiftVocoder(BundleManifest manifest, IGraphRunner runner)
        {
            this.runner = runner;
            var c = manifest.Component("hift");
            Graph = c.Str("graph") ?? "hift";
            T = c.Int("frames"); Hop = c.Int("hop_samples"); H = c.Int("harmonics");
            NMels = manifest.Graph(Graph).Input("mel").Shape[1];
            Context = c.Obj("chunking").Int("context_frames");
            SourceCache = c.Obj("streaming").Int("source_cache_len");
            MelCache = c.Obj("streaming").Int("mel_cache_len");
            bool hasLength = false;
            foreach (var i in manifest.Graph(Graph).Inputs) if (i.Name == "n_frames") hasLength = true;
            if (!hasLength)
                throw new SentisTtsException("hift: graph " + Graph + " has no n_frames input (exported by an older sentis-tts, it cannot vocode a call shorter than its frames exactly): re-export with `sentis-tts export hift`");
        }

        sealed class ChunkOut { public float[] Waveform, Source, Phase; }

        /// <summary>One exact-length call: mel of 1..T frames, noise (Hop * mel.Frames * H) floats; the
        /// three outputs come back asynchronously into `into` (waits only when job.Blocking).</summary>
        IEnumerable<bool> RunChunk<T0>(ReadbackJob<T0> job, Mel mel, float[] noise, float[] phaseIn, int refFrame, float[] cacheSource, ChunkOut into)
        {
            int n = mel.Frames;
            if (n < 1 || n > T || noise.Length != Hop * n * H)
                throw new SentisTtsException("hift: one call takes 1.." + T + " mel frames and " + (Hop * H) + " noise values per frame, got " + n + " frames and " + noise.Length + " values");
            if (n < T)
            {
                mel = mel.ZeroPad(T);
                var z = new float[Hop * T * H];
                Array.Copy(noise, z, noise.Length);
                noise = z;
            }
            var refOneHot = new float[T];
            if (refFrame >= 0) refOneHot[refFrame] = 1f;
            var cw = new float[1];
            var cs = new float[SourceCache];
            if (cacheSource != null && cacheSource.Length > 0)
            {
                if (cacheSource.Length != SourceCache) throw new SentisTtsException("hift: cache_source must have " + SourceCache + " samples, got " + cacheSource.Length);
                Array.Copy(cacheSource, cs, SourceCache);
                cw[0] = 1f;
            }
            var feeds = new Dictionary<string, GraphValue>
            {
                { "mel", new HostTensor(new[] { 1, NMels, T }, mel.Data) },
                { "noise", new HostTensor(new[] { 1, Hop * T, H }, noise) },
                { "phase_in", new HostTensor(new[] { 1, 1, H }, phaseIn ?? new float[H]) },
                { "phase_ref", new HostTensor(new[] { 1, T, 1 }, refOneHot) },
                { "cache_source", new HostTensor(new[] { 1, 1, SourceCache }, cs) },
                { "cache_weight", new HostTensor(new[] { 1, 1, 1 }, cw) },
                { "n_frames", new HostTensor(new[] { 1 }, new[] { n }) },
            };
            Calls++;
            GraphOutputs o = null;
            try
            {
                o = runner.Run(Graph, feeds);
                var names = new[] { "waveform", "source", "phase" };
                var host = new HostTensor[3];
                for (int k = 0; k < 3; k++)
                {
                    host[k] = HostTensor.Zeros(o[names[k]].Shape, DType.Float32);
                    runner.RequestRead(o[names[k]]);
                }
                for (int k = 0; k < 3; k++)
                    while (!job.Ready(runner, o[names[k]], host[k])) yield return false;
                into.Waveform = host[0].Floats; into.Source = host[1].Floats; into.Phase = host[2].Floats;
            }
            finally
            {
                if (o != null) o.Dispose();
                foreach (var v in feeds.Values) v.Dispose();
            }
        }

        /// <summary>Chunks (start, emitFrom, emitTo) in frames for an n-frame mel (n &gt; T).</summary>
        public List<int[]> Plan(int n)
        {
            var plan = new List<int[]>();
            int e = 0;
            while (e < n)
            {
                int a = e == 0 ? 0 : e - Context;
                if (a + T >= n)
                {
                    a = Math.Max(0, n - T);
                    plan.Add(new[] { a, e, n });
                    break;
                }
                plan.Add(new[] { a, e, a + T - Context });
                e = a + T - Context;
            }
            return plan;
        }

        /// <summary>mel (1, n_mels, N) -> waveform (480N) and source (480N). noise: (480N, H) floats. Waits
        /// for the readbacks (tests, offline use); a game polls Mel2WavJob.</summary>
        public void Mel2Wav(Mel mel, float[] noise, float[] cacheSource, out float[] wav, out float[] src)
        {
            using (var job = Mel2WavJob(mel, noise, cacheSource))
            {
                job.Wait();
                wav = job.Result[0]; src = job.Result[1];
            }
        }

        /// <summary>Mel2Wav as a job: one graph call per chunk, each chunk's outputs read back
        /// asynchronously (the next chunk needs the phase of the last); Result = { waveform, source }.</summary>
        public ReadbackJob<float[][]> Mel2WavJob(Mel mel, float[] noise, float[] cacheSource)
        {
            if (mel.Mels != NMels) throw new SentisTtsException("hift: mel must have " + NMels + " channels, got " + mel.Mels);
            int N = mel.Frames;
            if (N > 0 && noise.Length != Hop * N * H) throw new SentisTtsException("hift: noise must be (1, " + (Hop * N) + ", " + H + ") for " + N + " mel frames");
            if (N > 0 && cacheSource != null && cacheSource.Length > 0 && N * Hop < SourceCache)
                throw new SentisTtsException("hift: a cache_source needs at least " + (SourceCache / Hop) + " mel frames");
            return new ReadbackJob<float[][]>(job => Mel2WavBody(job, mel, noise, cacheSource));
        }

        IEnumerator<bool> Mel2WavBody(ReadbackJob<float[][]> job, Mel mel, float[] noise, float[] cacheSource)
        {
            int N = mel.Frames;
            var wav = new float[Hop * N];
            var src = new float[Hop * N];
            job.Result = new[] { wav, src };
            if (N == 0) yield break;
            var o = new ChunkOut();
            if (N <= T)
            {
                foreach (var w in RunChunk(job, mel, noise, null, -1, cacheSource, o)) yield return w;
                Array.Copy(o.Waveform, wav, Hop * N);
                Array.Copy(o.Source, src, Hop * N);
                yield break;
            }
            var phase = new float[N * H];
            foreach (var p in Plan(N))
            {
                int a = p[0], e0 = p[1], e1 = p[2];
                bool first = e0 == 0;
                var nz = new float[Hop * T * H];
                Array.Copy(noise, Hop * a * H, nz, 0, nz.Length);
                float[] phaseIn = null;
                if (!first) { phaseIn = new float[H]; Array.Copy(phase, (e0 - 1) * H, phaseIn, 0, H); }
                foreach (var w in RunChunk(job, mel.Slice(a, a + T), nz, phaseIn, first ? -1 : e0 - 1 - a, first ? cacheSource : null, o)) yield return w;
                Array.Copy(o.Waveform, Hop * (e0 - a), wav, Hop * e0, Hop * (e1 - e0));
                Array.Copy(o.Source, Hop * (e0 - a), src, Hop * e0, Hop * (e1 - e0));
                Array.Copy(o.Phase, (e0 - a) * H, phase, e0 * H, (e1 - e0) * H);
            }
        }

        /// <summary>numpy.hamming(m) as float32.</summary>
        public static float[] Hamming(int m)
        {
            var w = new float[m];
            if (m == 1) { w[0] = 1f; return w; }
            for (int k = 0; k < m; k++)
            {
                double n = 1 - m + 2 * k;
                w[k] = (float)(0.54 + 0.46 * Math.Cos(Math.PI * n / (m - 1)));
            }
            return w;
        }

        public HiftStream BeginStream(NoiseSource noise) { return new HiftStream(this, noise); }

        /// <summary>Streaming state (official scheme). Push mel chunks in order; the last with final=true.</summary>
        public sealed class HiftStream
        {
            readonly HiftVocoder v;
            readonly NoiseSource noise;
            readonly float[] window;
            Mel cacheMel;
            float[] cacheSource, cacheWav;
            public bool Finished { get; private set; }

            internal HiftStream(HiftVocoder v, NoiseSource noise)
            {
                this.v = v;
                this.noise = noise;
                window = Hamming(2 * v.SourceCache);
            }

            /// <summary>Waveform samples ready after this chunk (all remaining ones when final); waits
            /// for the readbacks. A game polls PushJob.</summary>
            public float[] Push(Mel chunk, bool final)
            {
                using (var job = PushJob(chunk, final)) return job.Wait();
            }

            /// <summary>Push as a job (Result: the samples ready); one push at a time, in order.</summary>
            public ReadbackJob<float[]> PushJob(Mel chunk, bool final)
            {
                if (Finished || busy) throw new InvalidOperationException(Finished ? "hift stream already finished" : "hift stream: the previous push has not finished");
                busy = true;
                var mel = cacheMel == null ? chunk : Mel.Concat(cacheMel, chunk);
                var inner = v.Mel2WavJob(mel, noise(mel.Frames), cacheMel == null ? null : cacheSource);
                return new ReadbackJob<float[]>(job => PushBody(job, inner, mel, final));
            }

            bool busy;

            IEnumerator<bool> PushBody(ReadbackJob<float[]> job, ReadbackJob<float[][]> inner, Mel mel, bool final)
            {
                try
                {
                    if (job.Blocking) inner.Wait();
                    else while (!inner.Poll()) { yield return false; if (job.Blocking) inner.Wait(); }
                }
                finally { inner.Dispose(); busy = false; }
                int S = v.SourceCache;
                float[] wav = inner.Result[0], src = inner.Result[1];
                if (cacheMel != null)
                    for (int i = 0; i < S; i++)
                    {
                        float a = (float)(wav[i] * window[i]);
                        float b = (float)(cacheWav[i] * window[S + i]);
                        wav[i] = (float)(a + b);
                    }
                if (final)
                {
                    Finished = true;
                    job.Result = wav;
                    yield break;
                }
                cacheMel = mel.Slice(mel.Frames - v.MelCache, mel.Frames);
                cacheSource = new float[S];
                Array.Copy(src, src.Length - S, cacheSource, 0, S);
                cacheWav = new float[S];
                Array.Copy(wav, wav.Length - S, cacheWav, 0, S);
                var outp = new float[wav.Length - S];
                Array.Copy(wav, outp, outp.Length);
                job.Result = outp;
            }
        }
    }
}
