// MonoBehaviour speaker: `await speaker.Speak(text, voice, token)` synthesizes with the bundle's
// graphs on Sentis and plays the audio through a ring buffer read by OnAudioFilterRead, starting
// as soon as the first samples exist (streaming) or when the utterance is done.
// Generation runs on the main thread (Sentis schedules there) and yields to the next frame every
// `tokensPerFrame` tokens, so the game keeps rendering.
using System;
using System.Threading;
using System.Threading.Tasks;
using SentisTts.Core;
using SentisTts.Core.Audio;
using SentisTts.Core.Pipeline;
using SentisTts.Core.Sampling;
using SentisTts.Sentis;
using Unity.InferenceEngine;
using UnityEngine;

namespace SentisTts.Unity
{
    public enum TtsBackend { GPUCompute, CPU }

    [RequireComponent(typeof(AudioSource))]
    public sealed class CosyVoiceSpeaker : MonoBehaviour
    {
        [Header("Model")]
        public TtsBundleAsset bundle;
        [Tooltip("GPUCompute is the fast path on desktop GPUs; CPU for small models or when the GPU backend misbehaves")]
        public TtsBackend backend = TtsBackend.GPUCompute;

        [Header("Synthesis")]
        public string defaultVoice = "";
        public SynthesisMode mode = SynthesisMode.ZeroShot;
        public bool streaming = true;
        public int seed = 0;
        [Tooltip("Decode steps per frame before yielding to the engine")]
        [Range(1, 64)] public int tokensPerFrame = 4;
        [Tooltip("Seconds of audio the playback ring buffer holds")]
        public float bufferSeconds = 30f;

        /// <summary>Optional: replaces the default flow stage (Core's FlowStage on the bundle's flow graphs).</summary>
        public Func<BundleManifest, IGraphRunner, IFlowStage> flowStageFactory;

        public event Action<float[]> AudioProduced;
        public bool IsSpeaking { get; private set; }

        BundleManifest manifest;
        SentisGraphRunner runner;
        TtsPipeline pipeline;
        AudioRingBuffer ring;
        LinearResampler resampler;
        int outputRate;

        void Awake()
        {
            outputRate = AudioSettings.outputSampleRate;
            ring = new AudioRingBuffer(Mathf.Max(1, (int)(bufferSeconds * outputRate)));
            var src = GetComponent<AudioSource>();
            // OnAudioFilterRead writes the samples; a silent looping clip keeps the source playing
            if (src.clip == null) src.clip = AudioClip.Create("SentisTts carrier", outputRate, 1, outputRate, false);
            src.loop = true;
            if (!src.isPlaying) src.Play();
        }

        void EnsureLoaded()
        {
            if (pipeline != null) return;
            if (bundle == null) throw new SentisTtsException(name + ": assign a TtsBundleAsset (Tools > Sentis TTS > Import Bundle)");
            manifest = bundle.LoadManifest();
            runner = new SentisGraphRunner(bundle.LoadModel, backend == TtsBackend.GPUCompute ? BackendType.GPUCompute : BackendType.CPU);
            IFlowStage flow = null;
            if (flowStageFactory != null) flow = flowStageFactory(manifest, runner);
            else if (manifest.HasComponent("flow")) flow = new SentisTts.Core.Flow.FlowStage(manifest, runner, bundle.LoadFlowNoise());
            pipeline = new TtsPipeline(manifest, runner, bundle.LoadTokenizer(), flow);
            resampler = new LinearResampler(pipeline.SampleRate, outputRate);
        }

        /// <summary>Speak `text` with `voice` (a baked voice name; empty = defaultVoice).
        /// Returns false when cancelled.</summary>
        public async Task<bool> Speak(string text, string voice = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            EnsureLoaded();
            if (pipeline.Flow == null)
                throw new SentisTtsException("the bundle has no flow component: export it with `sentis-tts export flow` and re-import");
            var v = string.IsNullOrEmpty(voice ?? defaultVoice) ? null : bundle.LoadVoice(voice ?? defaultVoice);
            var req = new SynthesisRequest { Text = text, Voice = v, Mode = mode, Streaming = streaming, Seed = seed,
                                             Uniforms = new SeededUniforms(seed) };
            IsSpeaking = true;
            try
            {
                using (var session = pipeline.Begin(req, Enqueue))
                {
                    while (!session.Done)
                    {
                        if (cancellationToken.IsCancellationRequested) { session.Cancel(); StopSpeaking(); return false; }
                        session.Advance(tokensPerFrame);
                        await Awaitable.NextFrameAsync(cancellationToken);
                    }
                    return session.Result.StopReason != "cancelled";
                }
            }
            catch (OperationCanceledException) { StopSpeaking(); return false; }
            finally { IsSpeaking = false; }
        }

        void Enqueue(float[] samples24k)
        {
            var x = resampler.Process(samples24k);
            if (AudioProduced != null) AudioProduced(x);
            int written = ring.Write(x, 0, x.Length);
            if (written < x.Length) Debug.LogWarning("CosyVoiceSpeaker: playback buffer full, dropped " + (x.Length - written) + " samples (raise bufferSeconds)");
        }

        /// <summary>Stop playback and drop queued audio.</summary>
        public void StopSpeaking() { ring.Clear(); }

        // audio thread
        float[] mono = new float[0];
        void OnAudioFilterRead(float[] data, int channels)
        {
            int frames = data.Length / channels;
            if (mono.Length < frames) mono = new float[frames];
            int n = ring.Read(mono, 0, frames);
            for (int f = 0; f < frames; f++)
            {
                float s = f < n ? mono[f] : 0f;
                for (int c = 0; c < channels; c++) data[f * channels + c] = s;
            }
        }

        void OnDestroy()
        {
            if (runner != null) runner.Dispose();
            runner = null;
            pipeline = null;
        }
    }
}
