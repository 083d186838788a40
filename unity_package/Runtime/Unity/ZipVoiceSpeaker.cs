// MonoBehaviour speaker for ZipVoice bundles (manifest family "zipvoice"): `await speaker.Speak(text,
// voice, token)` runs Core's ZipVoicePipeline on Sentis — text encoder, the one-graph CFG + Euler
// solve, Vocos — one graph per frame at most, each result read back without waiting, and plays the
// utterance when it is done (ZipVoice has no streaming). Japanese accent bundles take accent kana
// (docs/components/zipvoice.md); the voice is one baked with `sentis-tts voice add` on the bundle.
using System;
using System.Threading;
using System.Threading.Tasks;
using SentisTts.Core;
using SentisTts.Core.Audio;
using SentisTts.Core.ZipVoice;
using SentisTts.Sentis;
using Unity.InferenceEngine;
using UnityEngine;

namespace SentisTts.Unity
{
    [RequireComponent(typeof(AudioSource))]
    public sealed class ZipVoiceSpeaker : MonoBehaviour
    {
        public TtsBundleAsset bundle;
        public TtsBackend backend = TtsBackend.GPUCompute;
        public string defaultVoice = "";
        public int seed = 0;
        [Range(0.5f, 2f)] public float speed = 1f;
        public float bufferSeconds = 30f;

        public event Action<float[]> AudioProduced;
        public bool IsSpeaking { get; private set; }

        ZipVoicePipeline pipeline;
        SentisGraphRunner runner;
        SpeakerAudio audio;
        LinearResampler resampler;

        void Awake() { audio = new SpeakerAudio(GetComponent<AudioSource>(), bufferSeconds); }

        ZipVoicePipeline Pipeline()
        {
            if (pipeline != null) return pipeline;
            if (bundle == null) throw new SentisTtsException(name + ": assign a TtsBundleAsset (Tools > Sentis TTS > Import Bundle)");
            var manifest = bundle.LoadManifest();
            ModelFamilies.Require(manifest, ModelFamily.ZipVoice, "ZipVoiceSpeaker (use CosyVoiceSpeaker for cosyvoice2 and cosyvoice3 bundles)");
            runner = new SentisGraphRunner(bundle.LoadModel, backend == TtsBackend.GPUCompute ? BackendType.GPUCompute : BackendType.CPU);
            pipeline = new ZipVoicePipeline(manifest, runner, bundle.LoadZipVoiceTokenizer());
            resampler = new LinearResampler(pipeline.SampleRate, audio.OutputRate);
            return pipeline;
        }

        /// <summary>Speak `text` (accent kana for Japanese accent bundles) with a baked voice (null or empty =
        /// defaultVoice). Returns false when cancelled or destroyed meanwhile.</summary>
        public async Task<bool> Speak(string text, string voice = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            var p = Pipeline();
            var v = bundle.LoadZipVoiceVoice(string.IsNullOrEmpty(voice) ? defaultVoice : voice);
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, destroyCancellationToken))
            using (var s = p.Begin(new ZipVoiceRequest { Text = text, Voice = v, Seed = seed, Speed = speed }))
            {
                IsSpeaking = true;
                try
                {
                    while (!s.Tick()) await Awaitable.NextFrameAsync(linked.Token);
                }
                catch (OperationCanceledException) { return false; }
                finally { IsSpeaking = false; }
                var x = resampler.Process(s.Audio);
                if (AudioProduced != null) AudioProduced(x);
                int written = audio.Ring.Write(x, 0, x.Length);
                if (written < x.Length) Debug.LogWarning("ZipVoiceSpeaker: playback buffer full, dropped " + (x.Length - written) + " samples (raise bufferSeconds)");
                return true;
            }
        }

        public void StopSpeaking() { audio.Ring.Clear(); }

        void OnAudioFilterRead(float[] data, int channels) { audio.Fill(data, channels); }

        void OnDestroy()
        {
            if (runner != null) runner.Dispose();
            runner = null; pipeline = null;
        }
    }
}
