// Sample "Speak": add to a GameObject with a CosyVoiceSpeaker (bundle assigned, a baked voice
// name in `voice`), press Play: the line is synthesized whole, then played.
using System.Threading;
using SentisTts.Unity;
using UnityEngine;

namespace SentisTts.Samples
{
    public sealed class SpeakOnStart : MonoBehaviour
    {
        public CosyVoiceSpeaker speaker;
        public string voice = "";
        [TextArea] public string line = "Hello! This line was synthesized on the GPU with Sentis.";
        CancellationTokenSource cts;

        async void Start()
        {
            cts = new CancellationTokenSource();
            speaker.streaming = false;
            var done = await speaker.Speak(line, voice, cts.Token);
            Debug.Log(done ? "SpeakOnStart: finished" : "SpeakOnStart: cancelled");
        }

        void OnDestroy() { if (cts != null) cts.Cancel(); }
    }
}
