// CosyVoice3's causal HiFT over an IGraphRunner: static graphs `hift_{T}` of T mel frames (inputs
// mel (1, n_mels, T), noise (1, hop*T, H) uniform [0, 1), phase_in (1, 1, H), phase_ref (1, T, 1),
// n_frames (1,); outputs waveform (1, hop*T), phase (1, T, H)) that computes the official
// finalize=True pass over its first n frames. A growing mel is vocoded in chunks, exactly: a call
// reads `context_frames` before the first frame it emits (the causal stack's left reach), its sine
// phase pinned at the frame before that one to what the previous call gave there, and emits up to
// `lookahead_frames` before its last frame unless that frame ends the utterance (final); chunks are
// of the largest T, and each call runs on the smallest graph that holds it. Mirrors
// runtime_ref/cosyvoice3.py CausalVocoder / causal_chunk_plan call for call. VocodeJob reads each
// call's outputs back asynchronously (the frame never waits); Vocode waits.
using System;
using System.Collections.Generic;

namespace SentisTts.Core.Audio
{
    /// <summary>The causal source's uniform noise per output sample of one utterance piece, drawn from a
    /// NoiseSource as far as it is used (frames at a time; any steps give the same values).</summary>
    public sealed class CausalNoiseTable
    {
        readonly NoiseSource source;
        readonly int hop, harmonics;
        float[] values = new float[0];
        int frames;
        public CausalNoiseTable(NoiseSource source, int hop, int harmonics) { this.source = source; this.hop = hop; this.harmonics = harmonics; }

        /// <summary>Frames start..start+n into `into` (hop * T * H floats, zero past n).</summary>
        public void Copy(int start, int n, float[] into)
        {
            if (start + n > frames)
            {
                int need = start + n - frames;
                var x = source(need);
                if (x.Length != hop * need * harmonics)
                    throw new SentisTtsException("hift noise source gave " + x.Length + " values for " + need + " frames, expected " + (hop * need * harmonics));
                if (values.Length < hop * (start + n) * harmonics) Array.Resize(ref values, Math.Max(2 * values.Length, hop * (start + n) * harmonics));
                Array.Copy(x, 0, values, hop * frames * harmonics, x.Length);
                frames = start + n;
            }
            Array.Copy(values, hop * start * harmonics, into, 0, hop * n * harmonics);
            Array.Clear(into, hop * n * harmonics, into.Length - hop * n * harmonics);
        }
    }

    public sealed class CausalHiftVocoder
    {
        readonly IGraphRunner runner;
        /// <summary>Graph sizes (mel frames), smallest first, and their graph names: a call runs on the
        /// smallest graph that holds it; chunks are of the largest, T.</summary>
        public readonly int[] Sizes;
        public readonly string[] Graphs;
        public readonly int T, Hop, H, NMels, Context, Lookahead;
        public int Calls { get; private set; }
        /// <summary>The graph of the last call (tests).</summary>
        public string LastGraph { get; private set; }

        /// <summary>One piece's vocoding so far: frames emitted, the phase at the last one, its noise.</summary>
        public sealed class State
        {
            internal readonly CausalNoiseTable Noise;
            internal int Emitted;
            internal float[] Phase;
            internal State(CausalNoiseTable noise) { Noise = noise; }
            public int EmittedFrames { get { return Emitted; } }
        }

        public CausalHiftVocoder(BundleManifest manifest, IGraphRunner runner)
        {
            this.runner = runner;
            var c = manifest.Component("hift");
            var graphs = c.Obj("graphs");
            if (c.Str("variant") != "causal" || !c.ContainsKey("context_frames") || graphs == null || graphs.Count == 0)
                throw new SentisTtsException("hift: CosyVoice3 bundles need the chunked causal hift graphs (variant 'causal' with context_frames and graphs); re-export the hift component with this sentis-tts");
            var sizes = new List<int>();
            foreach (var k in graphs.Order) sizes.Add(int.Parse(k, System.Globalization.CultureInfo.InvariantCulture));
            sizes.Sort();
            Sizes = sizes.ToArray();
            Graphs = new string[Sizes.Length];
            for (int i = 0; i < Sizes.Length; i++) Graphs[i] = graphs.Str(Sizes[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
            T = Sizes[Sizes.Length - 1]; Hop = c.Int("hop_samples"); H = c.Int("harmonics");
            Context = c.Int("context_frames"); Lookahead = c.Int("lookahead_frames");
            NMels = manifest.Graph(Graphs[Graphs.Length - 1]).Input("mel").Shape[1];
        }

        /// <summary>The index into Sizes/Graphs of the smallest graph with at least n frames.</summary>
        public int GraphFor(int n)
        {
            for (int i = 0; i < Sizes.Length; i++) if (Sizes[i] >= n) return i;
            throw new SentisTtsException("hift: a call of " + n + " frames is longer than the largest graph (" + T + ")");
        }

        public State Start(NoiseSource noise) { return new State(new CausalNoiseTable(noise, Hop, H)); }

        /// <summary>The calls (start, n, end) that emit frames emitted..target of an M-frame mel
        /// (runtime_ref causal_chunk_plan): target = M when final, else M - Lookahead.</summary>
        public List<int[]> Plan(int emitted, int M, bool final)
        {
            var calls = new List<int[]>();
            int target = final ? M : M - Lookahead;
            while (emitted < target)
            {
                int start = Math.Max(0, emitted - Context);
                int n = Math.Min(T, M - start);
                int end = final && start + n == M ? M : Math.Min(start + n - Lookahead, target);
                calls.Add(new[] { start, n, end });
                emitted = end;
            }
            return calls;
        }

        /// <summary>mel (1, n_mels, M): the piece's whole mel so far -> the samples not emitted yet
        /// (up to Hop * M when final, else Hop * (M - Lookahead)); waits for each call's readback
        /// (tests, offline use; a game polls VocodeJob).</summary>
        public float[] Vocode(Mel mel, State s, bool final)
        {
            using (var job = VocodeJob(mel, s, final)) return job.Wait();
        }

        /// <summary>Vocode as a job: the plan's calls one after another (each needs the phase of the
        /// last), each call's waveform and phase read back asynchronously; Result = the new samples.</summary>
        public ReadbackJob<float[]> VocodeJob(Mel mel, State s, bool final)
        {
            if (mel.Mels != NMels) throw new SentisTtsException("hift: mel must have " + NMels + " channels, got " + mel.Mels);
            return new ReadbackJob<float[]>(job => VocodeBody(job, mel, s, final));
        }

        IEnumerator<bool> VocodeBody(ReadbackJob<float[]> job, Mel mel, State s, bool final)
        {
            var plan = Plan(s.Emitted, mel.Frames, final);
            var result = new float[Hop * (plan.Count == 0 ? 0 : plan[plan.Count - 1][2] - s.Emitted)];
            job.Result = result;
            int at = 0;
            foreach (var c in plan)
            {
                int start = c[0], n = c[1], end = c[2];
                int g = GraphFor(n), Tg = Sizes[g];
                var m = new float[NMels * Tg];
                for (int ch = 0; ch < NMels; ch++) Array.Copy(mel.Data, ch * mel.Frames + start, m, ch * Tg, n);
                var noise = new float[Hop * Tg * H];
                s.Noise.Copy(start, n, noise);
                var refOneHot = new float[Tg];
                bool pinned = s.Emitted > 0;
                if (pinned) refOneHot[s.Emitted - 1 - start] = 1f;
                var feeds = new Dictionary<string, GraphValue>
                {
                    { "mel", new HostTensor(new[] { 1, NMels, Tg }, m) },
                    { "noise", new HostTensor(new[] { 1, Hop * Tg, H }, noise) },
                    { "phase_in", new HostTensor(new[] { 1, 1, H }, pinned ? s.Phase : new float[H]) },
                    { "phase_ref", new HostTensor(new[] { 1, Tg, 1 }, refOneHot) },
                    { "n_frames", new HostTensor(new[] { 1 }, new[] { n }) },
                };
                Calls++;
                LastGraph = Graphs[g];
                GraphOutputs o = null;
                try
                {
                    o = runner.Run(Graphs[g], feeds);
                    var wav = HostTensor.Zeros(o["waveform"].Shape, DType.Float32);
                    var phase = HostTensor.Zeros(o["phase"].Shape, DType.Float32);
                    runner.RequestRead(o["waveform"]);
                    runner.RequestRead(o["phase"]);
                    while (!job.Ready(runner, o["waveform"], wav)) yield return false;
                    while (!job.Ready(runner, o["phase"], phase)) yield return false;
                    int len = Hop * (end - s.Emitted);
                    Array.Copy(wav.Floats, Hop * (s.Emitted - start), result, at, len);
                    at += len;
                    s.Phase = new float[H];
                    Array.Copy(phase.Floats, (end - 1 - start) * H, s.Phase, 0, H);
                    s.Emitted = end;
                }
                finally
                {
                    if (o != null) o.Dispose();
                    foreach (var v in feeds.Values) v.Dispose();
                }
            }
        }
    }
}
