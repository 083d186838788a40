using System.Collections.Generic;
using System.IO;

namespace SentisTts.Core.Pipeline
{
    /// <summary>A baked voice (voices/&lt;name&gt;.npz): speaker embedding, prompt speech tokens,
    /// prompt mel (frames, 80) for the flow, prompt text (and its ids when baked with them).</summary>
    public sealed class Voice
    {
        public string Name, PromptText;
        public float[] Embedding;
        public int[] SpeechTokens;
        public float[] PromptMel;  // (frames, mels) row-major, as baked
        public int PromptMelFrames, PromptMelChannels;
        public int[] PromptTextIds;  // null when not baked with ids

        public static Voice FromNpz(string name, Stream npz)
        {
            var a = Npy.ReadNpz(npz);
            NpyArray x;
            var v = new Voice { Name = name };
            if (!a.TryGetValue("embedding", out x)) throw new SentisTtsException("voice " + name + ": no 'embedding' array (re-bake it with `sentis-tts voice add`)");
            v.Embedding = x.Floats;
            if (!a.TryGetValue("speech_tokens", out x)) throw new SentisTtsException("voice " + name + ": no 'speech_tokens' array");
            v.SpeechTokens = x.Ints;
            if (!a.TryGetValue("prompt_mel", out x)) throw new SentisTtsException("voice " + name + ": no 'prompt_mel' array");
            v.PromptMel = x.Floats; v.PromptMelFrames = x.Shape[0]; v.PromptMelChannels = x.Shape.Length > 1 ? x.Shape[1] : 1;
            v.PromptText = a.TryGetValue("prompt_text", out x) ? x.Text : "";
            v.PromptTextIds = a.TryGetValue("prompt_text_ids", out x) ? x.Ints : null;
            return v;
        }

        public static Voice Load(BundleManifest m, string bundleDir, string name)
        {
            var voices = m.Root.Obj("voices");
            var e = voices == null ? null : voices.Obj(name);
            if (e == null)
                throw new SentisTtsException("the bundle has no voice '" + name + "'; known: " +
                                             (voices == null || voices.Count == 0 ? "none" : string.Join(", ", voices.Order.ToArray())));
            using (var s = File.OpenRead(Path.Combine(bundleDir, e.Str("file")))) return FromNpz(name, s);
        }
    }
}
