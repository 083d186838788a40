// The playback side shared by the speaker components: a silent looping carrier clip keeps the
// AudioSource playing, and OnAudioFilterRead fills the output from the ring buffer (mono to every
// channel, silence when it runs dry).
using SentisTts.Core.Audio;
using UnityEngine;

namespace SentisTts.Unity
{
    public sealed class SpeakerAudio
    {
        public readonly AudioRingBuffer Ring;
        public readonly int OutputRate;
        float[] mono = new float[0];

        public SpeakerAudio(AudioSource src, float bufferSeconds)
        {
            OutputRate = AudioSettings.outputSampleRate;
            Ring = new AudioRingBuffer(Mathf.Max(1, (int)(bufferSeconds * OutputRate)));
            if (src.clip == null) src.clip = AudioClip.Create("SentisTts carrier", OutputRate, 1, OutputRate, false);
            src.loop = true;
            if (!src.isPlaying) src.Play();
        }

        /// <summary>OnAudioFilterRead body (audio thread).</summary>
        public void Fill(float[] data, int channels)
        {
            int frames = data.Length / channels;
            if (mono.Length < frames) mono = new float[frames];
            int n = Ring.Read(mono, 0, frames);
            for (int f = 0; f < frames; f++)
            {
                float s = f < n ? mono[f] : 0f;
                for (int c = 0; c < channels; c++) data[f * channels + c] = s;
            }
        }
    }
}
