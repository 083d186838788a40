// A sentis-tts bundle imported into a Unity project (created by the Editor importer): the manifest
// text, one ModelAsset per graph (.onnx imported by Sentis, or a quantized .sentis), the tokenizer
// files and the baked voices. Works on every platform (no file-system access at run time).
using System;
using System.Collections.Generic;
using System.IO;
using SentisTts.Core;
using SentisTts.Core.Pipeline;
using SentisTts.Core.Text;
using SentisTts.Core.ZipVoice;
using Unity.InferenceEngine;
using UnityEngine;

namespace SentisTts.Unity
{
    [Serializable]
    public sealed class GraphModel
    {
        public string graph;
        public ModelAsset model;
    }

    [Serializable]
    public sealed class VoiceBytes
    {
        public string name;
        public TextAsset npz;  // imported as .bytes
    }

    [CreateAssetMenu(menuName = "Sentis TTS/Bundle Asset", fileName = "TtsBundle")]
    public sealed class TtsBundleAsset : ScriptableObject
    {
        [TextArea] public string manifestJson;
        public List<GraphModel> graphs = new List<GraphModel>();
        public TextAsset vocabJson, mergesTxt, specialTokensJson;
        public List<VoiceBytes> voices = new List<VoiceBytes>();
        [Tooltip("The flow component's fixed noise table (.npy imported as .bytes)")]
        public TextAsset flowNoise;
        [Tooltip("ZipVoice bundles: text/tokens.txt and (Japanese accent) text/kana.tsv")]
        public TextAsset zipVoiceTokens, zipVoiceKana;
        [Tooltip("Weight precision the models were serialized with (informational)")]
        public string quantization = "none";

        public BundleManifest LoadManifest() { return BundleManifest.Parse(manifestJson, name + " (manifest)"); }

        public Qwen2Tokenizer LoadTokenizer()
        {
            if (vocabJson == null || mergesTxt == null || specialTokensJson == null)
                throw new SentisTtsException(name + ": tokenizer files missing (re-import a bundle exported with the text component)");
            return Qwen2Tokenizer.FromStrings(vocabJson.text, mergesTxt.text, specialTokensJson.text);
        }

        public ZipVoiceTokenizer LoadZipVoiceTokenizer()
        {
            if (zipVoiceTokens == null) throw new SentisTtsException(name + ": no tokens.txt (re-import a zipvoice bundle exported with the text component)");
            return ZipVoiceTokenizer.FromStrings(LoadManifest().Component("text"), zipVoiceTokens.text, zipVoiceKana == null ? null : zipVoiceKana.text);
        }

        public ZipVoiceVoice LoadZipVoiceVoice(string voiceName)
        {
            foreach (var v in voices)
                if (v.name == voiceName && v.npz != null)
                    using (var s = new MemoryStream(v.npz.bytes)) return ZipVoiceVoice.FromNpz(voiceName, s);
            throw new SentisTtsException(name + ": no voice '" + voiceName + "' (bake one with `sentis-tts voice add`)");
        }

        public Model LoadModel(string graph)
        {
            foreach (var g in graphs)
                if (g.graph == graph && g.model != null) return ModelLoader.Load(g.model);
            throw new SentisTtsException(name + ": no model for graph '" + graph + "' (re-import the bundle)");
        }

        public NpyArray LoadFlowNoise()
        {
            if (flowNoise == null) throw new SentisTtsException(name + ": no flow noise table (re-import a bundle exported with the flow component)");
            return Npy.Read(flowNoise.bytes);
        }

        public Voice LoadVoice(string voiceName)
        {
            foreach (var v in voices)
                if (v.name == voiceName && v.npz != null)
                    using (var s = new MemoryStream(v.npz.bytes)) return Voice.FromNpz(voiceName, s);
            var known = voices.ConvertAll(v => v.name);
            throw new SentisTtsException(name + ": no voice '" + voiceName + "'; known: " + (known.Count == 0 ? "none" : string.Join(", ", known.ToArray())));
        }
    }
}
