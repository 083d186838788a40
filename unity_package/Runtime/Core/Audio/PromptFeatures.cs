// Host-side features for making a voice from recorded audio, mirroring runtime_ref/audio.py (held to
// it by the voice_features golden trace, <= 1e-4): band-limited rational resampling (polyphase
// windowed sinc, Kaiser beta 5, 10 zero crossings per side), Kaldi fbank as CAM++ sees it (25/10 ms,
// DC removal, pre-emphasis 0.97, Povey window, FFT 512, mel 20 Hz..Nyquist, log, per-utterance mean
// subtraction) and the flow's prompt mel (reflect pad, periodic Hann STFT 1920/480, Slaney mel
// 0..8 kHz, ln(max(x, 1e-5))), plus the prompt checks and the token/mel alignment. The Whisper
// log-mel of the speech tokenizer is inside its graph. All in double precision.
using System;
using System.Collections.Generic;

namespace SentisTts.Core.Audio
{
    public static class PromptFeatures
    {
        public const double MinPromptSeconds = 1.0, MaxPromptSeconds = 30.0;

        static long Gcd(long a, long b) { while (b != 0) { var t = a % b; a = b; b = t; } return a; }

        static double BesselI0(double x)
        {
            double sum = 1, term = 1, q = x * x / 4;
            for (int k = 1; k < 200; k++) { term *= q / ((double)k * k); sum += term; if (term < sum * 1e-17) break; }
            return sum;
        }

        static double Sinc(double x) { if (x == 0) return 1; double p = Math.PI * x; return Math.Sin(p) / p; }

        /// <summary>runtime_ref audio.resample: output length ceil(len * dst / src).</summary>
        public static double[] Resample(IList<double> x, int srcRate, int dstRate)
        {
            if (srcRate == dstRate) { var c = new double[x.Count]; x.CopyTo(c, 0); return c; }
            long g = Gcd(dstRate, srcRate);
            int up = (int)(dstRate / g), down = (int)(srcRate / g);
            int mx = Math.Max(up, down);
            double cutoff = 1.0 / mx;
            int n = 10 * mx, len = 2 * n + 1;
            var h = new double[len];
            double i0b = BesselI0(5.0);
            for (int i = 0; i < len; i++)
            {
                double t = i - n;
                double r = 2.0 * i / (len - 1) - 1.0;  // numpy.kaiser: I0(beta sqrt(1 - r^2)) / I0(beta)
                double w = BesselI0(5.0 * Math.Sqrt(Math.Max(0.0, 1.0 - r * r))) / i0b;
                h[i] = cutoff * Sinc(cutoff * t) * w * up;
            }
            int half = (len - 1) / 2;
            long nOut = ((long)x.Count * up + down - 1) / down;
            var y = new double[nOut];
            for (long m = 0; m < nOut; m++)
            {
                long pos = m * down + half;
                long kLo = Math.Max(0, CeilDiv(pos - (len - 1), up)), kHi = Math.Min(x.Count - 1, pos / up);
                double acc = 0;
                for (long k = kLo; k <= kHi; k++) acc += x[(int)k] * h[pos - k * up];
                y[m] = acc;
            }
            return y;
        }

        static long CeilDiv(long a, long b) { return -FloorDiv(-a, b); }
        static long FloorDiv(long a, long b) { long q = a / b; if ((a % b != 0) && ((a < 0) != (b < 0))) q--; return q; }

        /// <summary>runtime_ref audio.check_prompt_audio (errors only; clipping is not an error).</summary>
        public static void CheckPrompt(IList<double> x, int rate, string name = "prompt audio")
        {
            if (x.Count == 0) throw new SentisTtsException(name + ": the audio is empty; record a 3-10 s prompt");
            double dur = x.Count / (double)rate;
            if (dur < MinPromptSeconds) throw new SentisTtsException(name + ": the audio is " + dur.ToString("0.00") + " s long; a prompt needs at least 1 s (3-10 s works best)");
            if (dur > MaxPromptSeconds) throw new SentisTtsException(name + ": the audio is " + dur.ToString("0.0") + " s long; a prompt may be at most 30 s, cut it");
            double peak = 0; foreach (var v in x) peak = Math.Max(peak, Math.Abs(v));
            if (peak < 1e-4) throw new SentisTtsException(name + ": the audio is silent (peak " + peak.ToString("0.0e0") + "); record speech at a normal level");
        }

        // -- FFT (mixed radix, any length with small factors; Bluestein is not needed for 400/512/1920) --
        static void Fft(double[] re, double[] im, int n, int stride, int off, double[] outRe, double[] outIm, int outOff)
        {
            if (n == 1) { outRe[outOff] = re[off]; outIm[outOff] = im[off]; return; }
            int p = 2; while (n % p != 0) p++;
            int m = n / p;
            for (int r = 0; r < p; r++) Fft(re, im, m, stride * p, off + r * stride, outRe, outIm, outOff + r * m);
            var tr = new double[p]; var ti = new double[p];
            for (int k = 0; k < m; k++)
            {
                for (int r = 0; r < p; r++)
                {
                    double a = -2 * Math.PI * r * k / n, c = Math.Cos(a), s = Math.Sin(a);
                    double xr = outRe[outOff + r * m + k], xi = outIm[outOff + r * m + k];
                    tr[r] = xr * c - xi * s; ti[r] = xr * s + xi * c;
                }
                for (int q = 0; q < p; q++)
                {
                    double sr = 0, si = 0;
                    for (int r = 0; r < p; r++)
                    {
                        double a = -2 * Math.PI * r * q / p, c = Math.Cos(a), s = Math.Sin(a);
                        sr += tr[r] * c - ti[r] * s; si += tr[r] * s + ti[r] * c;
                    }
                    outRe[outOff + q * m + k] = sr; outIm[outOff + q * m + k] = si;
                }
            }
        }

        /// <summary>|rfft(x, nFft)|^2 or |.| (x zero-padded to nFft); bins 0..nFft/2.</summary>
        static double[] Spectrum(double[] frame, int nFft, bool power, double magEps)
        {
            var re = new double[nFft]; var im = new double[nFft];
            Array.Copy(frame, re, Math.Min(frame.Length, nFft));
            var oRe = new double[nFft]; var oIm = new double[nFft];
            Fft(re, im, nFft, 1, 0, oRe, oIm, 0);
            var r = new double[nFft / 2 + 1];
            for (int k = 0; k < r.Length; k++)
            {
                double p2 = oRe[k] * oRe[k] + oIm[k] * oIm[k];
                r[k] = power ? p2 : Math.Sqrt(p2 + magEps);
            }
            return r;
        }

        // -- mel filters ---------------------------------------------------------------------------
        static double HzToMelSlaney(double f)
        {
            const double fsp = 200.0 / 3, minLogHz = 1000.0;
            double logstep = Math.Log(6.4) / 27.0;
            return f >= minLogHz ? minLogHz / fsp + Math.Log(Math.Max(f, 1e-12) / minLogHz) / logstep : f / fsp;
        }

        static double MelToHzSlaney(double m)
        {
            const double fsp = 200.0 / 3, minLogHz = 1000.0;
            double logstep = Math.Log(6.4) / 27.0, minLogMel = minLogHz / fsp;
            return m >= minLogMel ? minLogHz * Math.Exp(logstep * (m - minLogMel)) : fsp * m;
        }

        /// <summary>librosa mel(sr, n_fft, n_mels, fmin, fmax), htk=False, norm='slaney': (n_mels, n_fft/2+1).</summary>
        public static double[,] SlaneyMelFilters(int sr, int nFft, int nMels, double fmin, double fmax)
        {
            int nb = nFft / 2 + 1;
            var fftFreqs = new double[nb];
            for (int i = 0; i < nb; i++) fftFreqs[i] = (sr / 2.0) * i / (nb - 1);
            double mlo = HzToMelSlaney(fmin), mhi = HzToMelSlaney(fmax);
            var pts = new double[nMels + 2];
            for (int i = 0; i < pts.Length; i++) pts[i] = MelToHzSlaney(mlo + (mhi - mlo) * i / (nMels + 1));
            var w = new double[nMels, nb];
            for (int m = 0; m < nMels; m++)
            {
                double enorm = 2.0 / (pts[m + 2] - pts[m]);
                for (int k = 0; k < nb; k++)
                {
                    double lower = -(pts[m] - fftFreqs[k]) / (pts[m + 1] - pts[m]);
                    double upper = (pts[m + 2] - fftFreqs[k]) / (pts[m + 2] - pts[m + 1]);
                    w[m, k] = Math.Max(0.0, Math.Min(lower, upper)) * enorm;
                }
            }
            return w;
        }

        static double KaldiMel(double f) { return 1127.0 * Math.Log(1.0 + f / 700.0); }

        static double[,] KaldiMelBanks(int nBins, int nFft, double sr, double low, double high)
        {
            int nHalf = nFft / 2;
            double binWidth = sr / nFft, mlo = KaldiMel(low), mhi = KaldiMel(high), delta = (mhi - mlo) / (nBins + 1);
            var w = new double[nBins, nHalf + 1];
            for (int b = 0; b < nBins; b++)
            {
                double left = mlo + b * delta, center = mlo + (b + 1) * delta, right = mlo + (b + 2) * delta;
                for (int k = 0; k < nHalf; k++)
                {
                    double m = KaldiMel(binWidth * k);
                    w[b, k] = Math.Max(0.0, Math.Min((m - left) / (center - left), (right - m) / (right - center)));
                }
            }
            return w;
        }

        /// <summary>runtime_ref audio.kaldi_fbank: (frames, nMels) row-major float.</summary>
        public static float[] KaldiFbank(IList<double> wav16, out int frames, int nMels = 80, int sr = 16000, bool cmn = true)
        {
            int n = (int)(0.025 * sr), hop = (int)(0.010 * sr), nFft = 512;
            if (wav16.Count < n) throw new SentisTtsException("audio of " + wav16.Count + " samples is shorter than one 25 ms frame");
            frames = 1 + (wav16.Count - n) / hop;
            var banks = KaldiMelBanks(nMels, nFft, sr, 20.0, sr / 2.0);
            var povey = new double[n];
            for (int i = 0; i < n; i++) povey[i] = Math.Pow(0.5 - 0.5 * Math.Cos(2.0 * Math.PI * i / (n - 1)), 0.85);
            var feats = new double[frames * nMels];
            var fr = new double[n];
            double eps = 1.1920928955078125e-07;  // float32 eps
            for (int t = 0; t < frames; t++)
            {
                double mean = 0;
                for (int i = 0; i < n; i++) { fr[i] = wav16[t * hop + i]; mean += fr[i]; }
                mean /= n;
                for (int i = 0; i < n; i++) fr[i] -= mean;
                var pre = new double[n];
                pre[0] = (fr[0] - 0.97 * fr[0]) * povey[0];
                for (int i = 1; i < n; i++) pre[i] = (fr[i] - 0.97 * fr[i - 1]) * povey[i];
                var p = Spectrum(pre, nFft, true, 0);
                for (int b = 0; b < nMels; b++)
                {
                    double acc = 0;
                    for (int k = 0; k < p.Length; k++) acc += p[k] * banks[b, k];
                    feats[t * nMels + b] = Math.Log(Math.Max(acc, eps));
                }
            }
            if (cmn)
                for (int b = 0; b < nMels; b++)
                {
                    double mean = 0;
                    for (int t = 0; t < frames; t++) mean += feats[t * nMels + b];
                    mean /= frames;
                    for (int t = 0; t < frames; t++) feats[t * nMels + b] -= mean;
                }
            var r = new float[feats.Length];
            for (int i = 0; i < r.Length; i++) r[i] = (float)feats[i];
            return r;
        }

        static int Reflect(int i, int n) { while (i < 0 || i >= n) { if (i < 0) i = -i; if (i >= n) i = 2 * (n - 1) - i; } return i; }

        /// <summary>runtime_ref audio.flow_mel: (frames, nMels) row-major float.</summary>
        public static float[] FlowMel(IList<double> wav24, out int frames, int nFft = 1920, int hop = 480, int nMels = 80, int sr = 24000,
                                      double fmin = 0.0, double fmax = 8000.0)
        {
            int pad = (nFft - hop) / 2, len = wav24.Count + 2 * pad;
            frames = 1 + (len - nFft) / hop;
            var filters = SlaneyMelFilters(sr, nFft, nMels, fmin, fmax);
            var r = new float[frames * nMels];
            var fr = new double[nFft];
            for (int t = 0; t < frames; t++)
            {
                for (int i = 0; i < nFft; i++)
                    fr[i] = wav24[Reflect(t * hop + i - pad, wav24.Count)] * (0.5 - 0.5 * Math.Cos(2.0 * Math.PI * i / nFft));
                var mag = Spectrum(fr, nFft, false, 1e-9);
                for (int m = 0; m < nMels; m++)
                {
                    double acc = 0;
                    for (int k = 0; k < mag.Length; k++) acc += mag[k] * filters[m, k];
                    r[t * nMels + m] = (float)Math.Log(Math.Max(acc, 1e-5));
                }
            }
            return r;
        }

        /// <summary>CosyVoice2 alignment: k = min(melFrames / 2, tokens); keep k tokens and 2k mel frames.</summary>
        public static int AlignedTokens(int melFrames, int tokens) { return Math.Min(melFrames / 2, tokens); }
    }
}
