// Sample "Stream": speaks each line typed in the inspector field while it is generated (audio
// starts after the first token hop); call Interrupt() (e.g. from a UI button) to cancel a line.
using System.Threading;
using SentisTts.Unity;
using UnityEngine;

namespace SentisTts.Samples
{
    public sealed class StreamingSpeaker : MonoBehaviour
    {
        public CosyVoiceSpeaker speaker;
        public string voice = "";
        public string[] lines = { "Streaming starts playing before the whole sentence is generated.", "Press space to interrupt me." };
        CancellationTokenSource cts;
        float firstAudioAt = -1f, startedAt;

        async void Start()
        {
            speaker.streaming = true;
            speaker.AudioProduced += samples => { if (firstAudioAt < 0f) firstAudioAt = Time.realtimeSinceStartup; };
            foreach (var line in lines)
            {
                cts = new CancellationTokenSource();
                firstAudioAt = -1f;
                startedAt = Time.realtimeSinceStartup;
                bool done = await speaker.Speak(line, voice, cts.Token);
                Debug.Log("StreamingSpeaker: " + (done ? "done" : "cancelled") + ", first audio after " +
                          (firstAudioAt < 0f ? "n/a" : ((firstAudioAt - startedAt) * 1000f).ToString("F0") + " ms"));
            }
        }

        /// <summary>Hook this to a UI button (or a key in your input system) to interrupt the current line.</summary>
        public void Interrupt() { if (cts != null) cts.Cancel(); }

        void OnDestroy() { if (cts != null) cts.Cancel(); }
    }
}
