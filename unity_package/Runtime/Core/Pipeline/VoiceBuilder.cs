// Making a voice from recorded audio (a player's microphone, an AudioClip's samples), mirroring
// runtime_ref/prompt.py bake_voice (held to it by the voice_bake golden trace): check the audio,
// resample to 16 kHz and to the flow's rate, speech tokens from the bundle's speech_tokenizer graph
// (Whisper log-mel inside the graph), the CAM++ speaker embedding from Kaldi fbank + the campplus
// graph, the flow prompt mel, and the CosyVoice2 token/mel alignment. One call; it reads back the
// two small graph outputs (blocking, once per voice — do it at load time or behind a loading screen).
using System;
using System.Collections.Generic;
using SentisTts.Core.Audio;

namespace SentisTts.Core.Pipeline
{
    public static class VoiceBuilder
    {
        /// <summary>Mono `samples` at `rate` -> a Voice (prompt text optional: zero-shot needs the
        /// transcript of the recording, cross-lingual does not).</summary>
        public static Voice Build(BundleManifest m, IGraphRunner runner, IList<double> samples, int rate, string name, string promptText = "")
        {
            PromptFeatures.CheckPrompt(samples, rate, name);
            var st = m.Component("speech_tokenizer");
            var cp = m.Component("campplus");
            var mp = st.Obj("prompt_mel");
            int melRate = mp != null && mp.ContainsKey("sampling_rate") ? mp.Int("sampling_rate") : 24000;
            var wav16 = PromptFeatures.Resample(samples, rate, 16000);
            var wav24 = PromptFeatures.Resample(samples, rate, melRate);
            for (int i = 0; i < wav16.Length; i++) wav16[i] = (float)wav16[i];  // runtime_ref keeps them as float32
            for (int i = 0; i < wav24.Length; i++) wav24[i] = (float)wav24[i];

            // speech tokens
            var tg = m.Graph(st.Str("graph") ?? "speech_tokenizer");
            int nMax = tg.Input("waveform").Shape[1];
            if (wav16.Length > nMax) throw new SentisTtsException(name + ": prompt of " + (wav16.Length / 16000.0).ToString("0.0") + " s is longer than the tokenizer graph's " + (nMax / 16000) + " s");
            var buf = new float[nMax];
            for (int i = 0; i < wav16.Length; i++) buf[i] = (float)wav16[i];
            int[] tokens;
            using (var o = runner.Run(tg.Name, new Dictionary<string, GraphValue> {
                       { "waveform", new HostTensor(new[] { 1, nMax }, buf) }, { "waveform_length", HostTensor.Scalar1(wav16.Length) } }))
            {
                var all = runner.Read(o["speech_tokens"]).Ints;
                int count = runner.Read(o["token_count"]).Ints[0];
                tokens = new int[count];
                Array.Copy(all, tokens, count);
            }

            // speaker embedding
            var cg = m.Graph(cp.Str("graph") ?? "campplus");
            int frames;
            var fb = PromptFeatures.KaldiFbank(wav16, out frames);
            var fshape = cg.Input("fbank").Shape;
            int tMax = fshape[1], nMels = fshape[2];
            if (frames > tMax) throw new SentisTtsException(name + ": prompt has " + frames + " fbank frames, the campplus graph takes at most " + tMax);
            var fbuf = new float[tMax * nMels];
            Array.Copy(fb, fbuf, fb.Length);
            float[] emb;
            using (var o = runner.Run(cg.Name, new Dictionary<string, GraphValue> {
                       { "fbank", new HostTensor(new[] { 1, tMax, nMels }, fbuf) }, { "n_frames", HostTensor.Scalar1(frames) } }))
                emb = runner.Read(o["embedding"]).Floats;

            // flow prompt mel + alignment
            int melFrames;
            double fmax = mp != null && mp.ContainsKey("fmax") && mp.Get("fmax") != null ? mp.Double("fmax") : melRate / 2.0;
            var mel = PromptFeatures.FlowMel(wav24, out melFrames, mp != null ? mp.Int("n_fft") : 1920, mp != null ? mp.Int("hop_size") : 480,
                                             mp != null ? mp.Int("num_mels") : 80, melRate, mp != null ? mp.Double("fmin") : 0.0, fmax);
            int nMel = mp != null ? mp.Int("num_mels") : 80;
            int k = PromptFeatures.AlignedTokens(melFrames, tokens.Length);
            var tok = new int[k];
            Array.Copy(tokens, tok, k);
            var melA = new float[2 * k * nMel];
            Array.Copy(mel, melA, melA.Length);
            return new Voice { Name = name, PromptText = promptText ?? "", Embedding = emb, SpeechTokens = tok, PromptMel = melA,
                               PromptMelFrames = 2 * k, PromptMelChannels = nMel };
        }
    }
}
