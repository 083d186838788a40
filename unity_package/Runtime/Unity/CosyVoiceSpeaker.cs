// MonoBehaviour speaker for CosyVoice2 and CosyVoice3 bundles (the pipeline follows the manifest's
// family): `await speaker.Speak(text, voice, token)` synthesizes with the bundle's graphs on Sentis
// and plays the audio through a ring buffer read by OnAudioFilterRead, starting as soon as the
// first samples exist (streaming) or when the utterance is done.
// The logic is Core's SpeakerLogic (tested outside Unity on the Sentis stand-in): generation runs
// on the main thread (Sentis schedules there) within `frameBudgetMs` of scheduling per frame, the
// LLM's log-probs are read back asynchronously (the frame never waits for the GPU), and destroying
// the GameObject mid-sentence cancels the utterance (destroyCancellationToken) and frees every tensor.
using System;
using System.Threading;
using System.Threading.Tasks;
using SentisTts.Core;
using SentisTts.Core.Audio;
using SentisTts.Core.Llm;
using SentisTts.Core.Pipeline;
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
        [Tooltip("Sample speech tokens on the GPU (the bundle needs the llm_sample graph); CPU sampling is the default")]
        public bool sampleOnDevice = false;
        [Tooltip("Milliseconds of graph scheduling per frame on the main thread (at least one graph call runs per frame)")]
        [Range(0.5f, 33f)] public float frameBudgetMs = 4f;
        [Tooltip("At most this many decode steps per frame")]
        [Range(1, 64)] public int tokensPerFrame = 16;
        [Tooltip("Seconds of audio the playback ring buffer holds")]
        public float bufferSeconds = 30f;

        /// <summary>Optional: replaces the default flow stage (Core's FlowStage on the bundle's flow graphs).</summary>
        public Func<BundleManifest, IGraphRunner, IFlowStage> flowStageFactory;

        public event Action<float[]> AudioProduced;
        public bool IsSpeaking { get { return logic != null && logic.IsSpeaking; } }

        SpeakerLogic logic;
        SpeakerAudio audio;
        AudioRingBuffer ring;
        LinearResampler resampler;
        int outputRate;

        void Awake()
        {
            audio = new SpeakerAudio(GetComponent<AudioSource>(), bufferSeconds);  // OnAudioFilterRead writes the samples
            outputRate = audio.OutputRate;
            ring = audio.Ring;
            logic = new SpeakerLogic(Load, r => r.Dispose()) { Clock = () => Time.realtimeSinceStartupAsDouble };
            logic.OnAudio = Enqueue;
        }

        SpeechPipeline Load()
        {
            if (bundle == null) throw new SentisTtsException(name + ": assign a TtsBundleAsset (Tools > Sentis TTS > Import Bundle)");
            var manifest = bundle.LoadManifest();
            SpeechPipeline.RequireSpeechFamily(manifest, "CosyVoiceSpeaker");  // before any runner: zipvoice fails in one line
            var runner = new SentisGraphRunner(bundle.LoadModel, backend == TtsBackend.GPUCompute ? BackendType.GPUCompute : BackendType.CPU,
                                               LlmGenerator.WorkersPerGraph(manifest));
            try
            {
                IFlowStage flow = null;
                if (flowStageFactory != null) flow = flowStageFactory(manifest, runner);
                else if (manifest.HasComponent("flow")) flow = new SentisTts.Core.Flow.FlowStage(manifest, runner, bundle.LoadFlowNoise());
                var p = SpeechPipeline.ForBundle(manifest, runner, bundle.LoadTokenizer(), flow);  // cosyvoice2 or cosyvoice3
                resampler = new LinearResampler(p.SampleRate, outputRate);
                return p;
            }
            catch { runner.Dispose(); throw; }  // a bundle the pipeline refuses leaves no Workers behind
        }

        static async Task NextFrame(CancellationToken token) { await Awaitable.NextFrameAsync(token); }

        /// <summary>Speak `text` with `voice` (a baked voice name; null or empty = defaultVoice).
        /// Returns false when cancelled or when the speaker is destroyed meanwhile.</summary>
        public async Task<bool> Speak(string text, string voice = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            logic.DefaultVoice = defaultVoice; logic.Mode = mode; logic.Streaming = streaming; logic.Seed = seed; logic.DeviceSampling = sampleOnDevice;
            logic.FrameBudgetSeconds = frameBudgetMs / 1000.0; logic.MaxTokensPerFrame = tokensPerFrame;
            logic.LoadVoice = bundle.LoadVoice;
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, destroyCancellationToken))
            {
                bool ok = await logic.Speak(text, voice, linked.Token, NextFrame);
                if (!ok && ring != null) StopSpeaking();
                return ok;
            }
        }

        /// <summary>Speak with a Voice object, e.g. from CreateVoice.</summary>
        public async Task<bool> Speak(string text, Voice voice, CancellationToken cancellationToken = default(CancellationToken))
        {
            logic.Mode = mode; logic.Streaming = streaming; logic.Seed = seed; logic.DeviceSampling = sampleOnDevice;
            logic.FrameBudgetSeconds = frameBudgetMs / 1000.0; logic.MaxTokensPerFrame = tokensPerFrame;
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, destroyCancellationToken))
            {
                bool ok = await logic.SpeakWith(text, voice, linked.Token, NextFrame);
                if (!ok && ring != null) StopSpeaking();
                return ok;
            }
        }

        /// <summary>Bistream: speak text that is still arriving (e.g. a chat model's reply): create a
        /// TextFeed, start SpeakStream, Push pieces as they come and End when complete. Speech starts
        /// before the text is complete; always streamed (CosyVoice2 and CosyVoice3 bundles).</summary>
        public async Task<bool> SpeakStream(TextFeed feed, string voice = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            logic.DefaultVoice = defaultVoice; logic.Mode = mode; logic.Seed = seed;
            logic.FrameBudgetSeconds = frameBudgetMs / 1000.0; logic.MaxTokensPerFrame = tokensPerFrame;
            logic.LoadVoice = bundle.LoadVoice;
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, destroyCancellationToken))
            {
                bool ok = await logic.SpeakStream(feed, voice, linked.Token, NextFrame);
                if (!ok && ring != null) StopSpeaking();
                return ok;
            }
        }

        /// <summary>A voice from a recording (e.g. Microphone.Start's clip): mixed down to mono; the bundle
        /// needs the speech_tokenizer and campplus graphs. `promptText` = what is said (for zero-shot).
        /// Blocks for the two graph readbacks: call it at load time.</summary>
        public Voice CreateVoice(AudioClip clip, string voiceName, string promptText = "")
        {
            var data = new float[clip.samples * clip.channels];
            clip.GetData(data, 0);
            var mono = new double[clip.samples];
            for (int i = 0; i < clip.samples; i++)
            {
                double acc = 0;
                for (int c = 0; c < clip.channels; c++) acc += data[i * clip.channels + c];
                mono[i] = acc / clip.channels;
            }
            return logic.MakeVoice(mono, clip.frequency, voiceName, promptText);
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
        void OnAudioFilterRead(float[] data, int channels) { audio.Fill(data, channels); }

        void OnDestroy()
        {
            if (logic != null) logic.Destroy();
        }
    }
}
