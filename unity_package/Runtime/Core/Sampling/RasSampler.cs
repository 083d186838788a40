// CosyVoice2's speech-token sampling (`ras_sampling`) as a deterministic function of
// (log-probs, decoded history, uniforms). Mirrors runtime_ref/sampling.py operation by operation
// (float32 softmax with numpy's pairwise sum, stable descending sort, float32 running sum for the
// top-p cut, float64 inverse-CDF draw), so the same uniforms give the same tokens. Every float32
// sum is cast back to float: C# may keep float intermediates in higher precision (Mono does), which
// moved a cumulative sum that ties exactly with top_p by one ulp (sampler golden case 54).
using System;
using System.Collections.Generic;

namespace SentisTts.Core.Sampling
{
    /// <summary>Source of uniforms in [0, 1); each multinomial draw consumes exactly one.</summary>
    public interface IUniformSource
    {
        double NextUniform();
    }

    /// <summary>Uniforms from System.Random (seeded), 53-bit resolution.</summary>
    public sealed class SeededUniforms : IUniformSource
    {
        readonly Random rng;
        public SeededUniforms(int seed) { rng = new Random(seed); }
        public double NextUniform()
        {
            long hi = rng.Next(1 << 26), lo = rng.Next(1 << 27);
            return ((hi << 27) | lo) / 9007199254740992.0;
        }
    }

    /// <summary>A fixed list of uniforms (replaying recorded randomness).</summary>
    public sealed class ReplayUniforms : IUniformSource
    {
        readonly IList<double> values;
        public int Used { get; private set; }
        public ReplayUniforms(IList<double> values) { this.values = values; }
        public double NextUniform()
        {
            if (Used >= values.Count) throw new InvalidOperationException("ReplayUniforms: all " + values.Count + " uniforms used");
            return values[Used++];
        }
    }

    public sealed class RasParams
    {
        public float TopP = 0.8f;
        public int TopK = 25;
        public int WinSize = 10;
        public double TauR = 0.1;

        public static RasParams FromManifest(JsonObject s)
        {
            return new RasParams { TopP = (float)s.Double("top_p"), TopK = s.Int("top_k"), WinSize = s.Int("win_size"), TauR = s.Double("tau_r") };
        }
    }

    public interface ITokenSampler
    {
        int Sample(float[] scores, IList<int> decoded, IUniformSource rng);
    }

    /// <summary>RAS with its own scratch buffers (sized at the first call, reused afterwards): no
    /// managed allocation per draw.</summary>
    public sealed class RasSampler : ITokenSampler
    {
        public readonly RasParams Params;
        readonly Sampler.Workspace ws = new Sampler.Workspace();
        public RasSampler(RasParams p) { Params = p; }
        public int Sample(float[] scores, IList<int> decoded, IUniformSource rng) { return ws.Ras(scores, decoded, Params, rng); }
    }

    public sealed class GreedySampler : ITokenSampler
    {
        public int Sample(float[] scores, IList<int> decoded, IUniformSource rng) { return Sampler.ArgMax(scores); }
    }

    public static class Sampler
    {
        /// <summary>numpy's float32 pairwise summation (npy_pairwise_sum, blocks of 128, 8 accumulators).</summary>
        public static float PairwiseSum(float[] a, int start, int n)
        {
            if (n < 8)
            {
                float res = -0.0f;  // numpy starts the short loop from -0.0 (keeps the sign of a sum of -0.0)
                for (int i = 0; i < n; i++) res = (float)(res + a[start + i]);
                return res;
            }
            if (n <= 128)
            {
                float r0 = a[start], r1 = a[start + 1], r2 = a[start + 2], r3 = a[start + 3];
                float r4 = a[start + 4], r5 = a[start + 5], r6 = a[start + 6], r7 = a[start + 7];
                int i;
                for (i = 8; i < n - (n % 8); i += 8)
                {
                    r0 = (float)(r0 + a[start + i]); r1 = (float)(r1 + a[start + i + 1]);
                    r2 = (float)(r2 + a[start + i + 2]); r3 = (float)(r3 + a[start + i + 3]);
                    r4 = (float)(r4 + a[start + i + 4]); r5 = (float)(r5 + a[start + i + 5]);
                    r6 = (float)(r6 + a[start + i + 6]); r7 = (float)(r7 + a[start + i + 7]);
                }
                float res = (float)((float)((float)(r0 + r1) + (float)(r2 + r3)) + (float)((float)(r4 + r5) + (float)(r6 + r7)));
                for (; i < n; i++) res = (float)(res + a[start + i]);
                return res;
            }
            int n2 = n / 2;
            n2 -= n2 % 8;
            return (float)(PairwiseSum(a, start, n2) + PairwiseSum(a, start + n2, n - n2));
        }

        public static float[] Softmax(float[] s)
        {
            var e = new float[s.Length];
            SoftmaxInto(s, e);
            return e;
        }

        static void SoftmaxInto(float[] s, float[] e)
        {
            int n = s.Length;
            float max = float.NegativeInfinity;
            for (int i = 0; i < n; i++) if (s[i] > max) max = s[i];
            for (int i = 0; i < n; i++) e[i] = (float)Math.Exp((float)(s[i] - max));
            float sum = PairwiseSum(e, 0, n);
            for (int i = 0; i < n; i++) e[i] = e[i] / sum;
        }

        /// <summary>Inverse-CDF draw over unnormalised probs p[0..n) (float64 running sum).</summary>
        public static int Draw(float[] p, int n, double u) { return Draw(p, n, u, new double[n]); }

        static int Draw(float[] p, int n, double u, double[] cdf)
        {
            double acc = 0;
            for (int i = 0; i < n; i++) { acc += p[i]; cdf[i] = acc; }
            double target = u * cdf[n - 1];
            // searchsorted(side="right"): first i with cdf[i] > target
            int lo = 0, hi = n;
            while (lo < hi) { int mid = (lo + hi) >> 1; if (cdf[mid] <= target) lo = mid + 1; else hi = mid; }
            return Math.Min(lo, n - 1);
        }

        public static int Nucleus(float[] scores, float topP, int topK, IUniformSource rng) { return new Workspace().Nucleus(scores, topP, topK, rng); }

        public static int Random(float[] scores, IUniformSource rng) { return new Workspace().Random(scores, rng); }

        public static int Ras(float[] scores, IList<int> decoded, RasParams p, IUniformSource rng) { return new Workspace().Ras(scores, decoded, p, rng); }

        /// <summary>The sampler's scratch buffers, sized to the vocabulary at the first call.</summary>
        public sealed class Workspace
        {
            float[] probs, sorted, masked;
            int[] order;
            double[] cdf;

            void Size(int n)
            {
                if (probs != null && probs.Length == n) return;
                probs = new float[n]; sorted = new float[n]; masked = new float[n];
                order = new int[n]; cdf = new double[n];
            }

            /// <summary>Nucleus: only the top_k first entries of the stable descending order matter (the
            /// cut keeps at most top_k), so those are selected by insertion (ties keep index order,
            /// exactly like the stable sort) instead of sorting the whole vocabulary.</summary>
            public int Nucleus(float[] scores, float topP, int topK, IUniformSource rng)
            {
                int n = scores.Length;
                Size(n);
                SoftmaxInto(scores, probs);
                int k = Math.Max(1, Math.Min(topK, n));
                int m = 0;  // order[0..m) = the best so far, descending, ties by index
                for (int i = 0; i < n; i++)
                {
                    float p = probs[i];
                    if (m == k && !(p > probs[order[m - 1]])) continue;
                    int j = m < k ? m++ : m - 1;
                    while (j > 0 && p > probs[order[j - 1]]) { order[j] = order[j - 1]; j--; }
                    order[j] = i;
                }
                for (int i = 0; i < m; i++) sorted[i] = probs[order[i]];
                int count = 0;
                float before = 0f;  // float32 cumulative probability before each token
                for (int i = 0; i < m; i++)
                {
                    if (before < topP) count++;
                    before = (float)(before + sorted[i]);
                }
                int cut = Math.Max(1, Math.Min(count, topK));
                return order[Draw(sorted, cut, rng.NextUniform(), cdf)];
            }

            public int Random(float[] scores, IUniformSource rng)
            {
                Size(scores.Length);
                SoftmaxInto(scores, probs);
                return Draw(probs, probs.Length, rng.NextUniform(), cdf);
            }

            public int Ras(float[] scores, IList<int> decoded, RasParams p, IUniformSource rng)
            {
                int top = Nucleus(scores, p.TopP, p.TopK, rng);
                int rep = 0;
                if (p.WinSize > 0)
                    for (int i = Math.Max(0, decoded.Count - p.WinSize); i < decoded.Count; i++) if (decoded[i] == top) rep++;
                if (rep >= p.WinSize * p.TauR)
                {
                    Size(scores.Length);
                    Array.Copy(scores, masked, scores.Length);
                    masked[top] = float.NegativeInfinity;
                    top = Random(masked, rng);
                }
                return top;
            }
        }

        public static int ArgMax(float[] s)
        {
            int best = 0;
            for (int i = 1; i < s.Length; i++) if (s[i] > s[best]) best = i;
            return best;
        }
    }
}
