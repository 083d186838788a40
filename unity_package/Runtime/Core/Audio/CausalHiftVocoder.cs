// CosyVoice3's causal HiFT over an IGraphRunner: one static graph `hift` of T mel frames (inputs
// mel (1, n_mels, T), noise (1, hop*T, H) uniform [0, 1), phase_in (1, 1, H), phase_ref (1, T, 1),
// n_frames (1,); outputs waveform (1, hop*T), phase (1, T, H)) that computes the official
// finalize=True pass over its first n frames. A growing mel is vocoded in chunks, exactly: a call
// reads `context_frames` before the first frame it emits (the causal stack's left reach), its sine
// phase pinned at the frame before that one to what the previous call gave there, and emits up to
// `lookahead_frames` before its last frame unless that frame ends the utterance (final). Mirrors
// runtime_ref/cosyvoice3.py CausalVocoder / causal_chunk_plan call for call.
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
        public readonly string Graph;
        public readonly int T, Hop, H, NMels, Context, Lookahead;
        public int Calls { get; private set; }

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
            if (c.Str("variant") != "causal" || !c.ContainsKey("context_frames"))
                throw new SentisTtsException("hift: CosyVoice3 bundles need the chunked causal hift graph (variant 'causal' with context_frames); re-export the hift component with this sentis-tts");
            Graph = c.Str("graph") ?? "hift";
            T = c.Int("frames"); Hop = c.Int("hop_samples"); H = c.Int("harmonics");
            Context = c.Int("context_frames"); Lookahead = c.Int("lookahead_frames");
            NMels = manifest.Graph(Graph).Input("mel").Shape[1];
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
        /// (up to Hop * M when final, else Hop * (M - Lookahead)); waits for each call's readback.</summary>
        public float[] Vocode(Mel mel, State s, bool final)
        {
            if (mel.Mels != NMels) throw new SentisTtsException("hift: mel must have " + NMels + " channels, got " + mel.Mels);
            var plan = Plan(s.Emitted, mel.Frames, final);
            var result = new float[Hop * (plan.Count == 0 ? 0 : plan[plan.Count - 1][2] - s.Emitted)];
            int at = 0;
            foreach (var c in plan)
            {
                int start = c[0], n = c[1], end = c[2];
                var m = new float[NMels * T];
                for (int ch = 0; ch < NMels; ch++) Array.Copy(mel.Data, ch * mel.Frames + start, m, ch * T, n);
                var noise = new float[Hop * T * H];
                s.Noise.Copy(start, n, noise);
                var refOneHot = new float[T];
                bool pinned = s.Emitted > 0;
                if (pinned) refOneHot[s.Emitted - 1 - start] = 1f;
                var feeds = new Dictionary<string, GraphValue>
                {
                    { "mel", new HostTensor(new[] { 1, NMels, T }, m) },
                    { "noise", new HostTensor(new[] { 1, Hop * T, H }, noise) },
                    { "phase_in", new HostTensor(new[] { 1, 1, H }, pinned ? s.Phase : new float[H]) },
                    { "phase_ref", new HostTensor(new[] { 1, T, 1 }, refOneHot) },
                    { "n_frames", new HostTensor(new[] { 1 }, new[] { n }) },
                };
                Calls++;
                try
                {
                    using (var o = runner.Run(Graph, feeds))
                    {
                        var wav = runner.Read(o["waveform"]).Floats;
                        var phase = runner.Read(o["phase"]).Floats;
                        int len = Hop * (end - s.Emitted);
                        Array.Copy(wav, Hop * (s.Emitted - start), result, at, len);
                        at += len;
                        s.Phase = new float[H];
                        Array.Copy(phase, (end - 1 - start) * H, s.Phase, 0, H);
                        s.Emitted = end;
                    }
                }
                finally { foreach (var v in feeds.Values) v.Dispose(); }
            }
            return result;
        }
    }
}
