// CosyVoice3's causal HiFT over an IGraphRunner: one static graph `hift` of T mel frames
// (inputs mel (1, n_mels, T), noise (1, hop*T, H) uniform [0, 1); output waveform (1, hop*T)) that
// vocodes a whole mel of M <= T frames in one call, zero right padding (the graph computes the
// official finalize=True result; its outputs past frame M are unused). Mirrors
// runtime_ref/cosyvoice3.py CausalVocoder: finalize=False keeps only the samples that do not depend
// on unseen frames, 480 * (M - held_back), held_back = f0 look-right + conv_pre look-right + 1.
using System;
using System.Collections.Generic;

namespace SentisTts.Core.Audio
{
    public sealed class CausalHiftVocoder
    {
        readonly IGraphRunner runner;
        public readonly string Graph;
        public readonly int T, Hop, H, NMels, HeldBack;
        public int Calls { get; private set; }

        public CausalHiftVocoder(BundleManifest manifest, IGraphRunner runner)
        {
            this.runner = runner;
            var c = manifest.Component("hift");
            if (c.Str("variant") != "causal")
                throw new SentisTtsException("hift: CosyVoice3 bundles need the causal hift graph (variant 'causal'); re-export the hift component");
            Graph = c.Str("graph") ?? "hift";
            T = c.Int("frames"); Hop = c.Int("hop_samples"); H = c.Int("harmonics");
            HeldBack = c.Int("f0_look_right") + c.Int("conv_pre_look_right") + 1;
            NMels = manifest.Graph(Graph).Input("mel").Shape[1];
        }

        /// <summary>Values in one noise table: (1, Hop * T, H) uniform [0, 1).</summary>
        public int NoiseLength { get { return Hop * T * H; } }

        /// <summary>mel (1, n_mels, M), M &lt;= T -> Hop * M samples (finalize) or Hop * (M - HeldBack)
        /// (finalize=false: the samples later frames cannot change). `table`: NoiseLength values.</summary>
        public float[] Vocode(Mel mel, float[] table, bool finalize)
        {
            int M = mel.Frames;
            if (mel.Mels != NMels) throw new SentisTtsException("hift: mel must have " + NMels + " channels, got " + mel.Mels);
            if (M > T)
                throw new SentisTtsException("hift: " + M + " mel frames exceed the causal vocoder graph's " + T +
                                             "; re-export with a larger --hift-frames (at least the largest --flow-len)");
            if (table.Length != NoiseLength) throw new SentisTtsException("hift: the noise table must have " + NoiseLength + " values, got " + table.Length);
            int n = Hop * (finalize ? M : Math.Max(0, M - HeldBack));
            var feeds = new Dictionary<string, GraphValue>
            {
                { "mel", new HostTensor(new[] { 1, NMels, T }, mel.ZeroPad(T).Data) },
                { "noise", new HostTensor(new[] { 1, Hop * T, H }, table) },
            };
            Calls++;
            try
            {
                using (var o = runner.Run(Graph, feeds))
                {
                    var wav = runner.Read(o["waveform"]).Floats;
                    var r = new float[n];
                    Array.Copy(wav, r, n);
                    return r;
                }
            }
            finally { foreach (var v in feeds.Values) v.Dispose(); }
        }
    }
}
