// Imports a sentis-tts bundle folder into the project:
//   1. reads manifest.json and checks every file's sha256 (Core's BundleManifest.Verify);
//   2. copies the .onnx graphs under Assets/<target>/ (Sentis' ONNX importer turns each into a
//      ModelAsset); optionally loads each model, quantizes its weights (ModelQuantizer Float16 or
//      Uint8) and serializes it to <graph>.sentis with ModelWriter.Save instead;
//   3. copies the tokenizer files and voices (as .bytes) and writes a TtsBundleAsset that ties
//      everything together for CosyVoiceSpeaker.
// Menu: Tools > Sentis TTS > Import Bundle…
// Batch mode:
//   Unity -batchmode -quit -projectPath <project> -executeMethod SentisTts.Editor.BundleImporter.ImportFromCommandLine \
//         -sentisTtsBundle <bundle dir> [-sentisTtsTarget Assets/SentisTts/MyVoice] [-sentisTtsQuantize none|float16|uint8]
using System;
using System.Collections.Generic;
using System.IO;
using SentisTts.Core;
using SentisTts.Unity;
using Unity.InferenceEngine;
using UnityEditor;
using UnityEngine;

namespace SentisTts.Editor
{
    /// <summary>Weight precision of the imported graphs. Recommended = per graph, from the measured
    /// effect of Sentis's own quantizer (docs/unity.md, "Quantize").</summary>
    public enum WeightQuantization { None, Float16, Uint8, Recommended }

    public static class BundleImporter
    {
        [MenuItem("Tools/Sentis TTS/Import Bundle...")]
        public static void ImportFromMenu()
        {
            var src = EditorUtility.OpenFolderPanel("sentis-tts bundle folder (with manifest.json)", "", "");
            if (string.IsNullOrEmpty(src)) return;
            // DisplayDialogComplex returns 0 (ok), 1 (cancel — also when the dialog is closed) or 2 (alt)
            var quant = QuantizationFromDialogs(
                EditorUtility.DisplayDialogComplex("Sentis TTS", "Import with the recommended weight precision per graph (Float16 .sentis where it is measured lossless), or choose?",
                                                   "Recommended", "Cancel", "Other..."),
                () => EditorUtility.DisplayDialogComplex("Sentis TTS", "Weight precision of every graph",
                                                         "Float32 (.onnx)", "Cancel", "Uint8 (.sentis, lossy)"));
            if (quant == null) return;  // cancelled or closed: import nothing
            try
            {
                var asset = Import(src, "Assets/SentisTts/" + Path.GetFileName(src.TrimEnd('/', '\\')), quant.Value);
                Selection.activeObject = asset;
            }
            catch (SentisTtsException e)
            {
                EditorUtility.DisplayDialog("Sentis TTS import failed", e.Message, "OK");
            }
        }

        /// <summary>The import dialogs' answers -> precision; null = cancelled (Cancel or the dialog closed,
        /// both return 1). `second` is asked only when the first answer is "Other...".</summary>
        public static WeightQuantization? QuantizationFromDialogs(int first, Func<int> second)
        {
            if (first == 0) return WeightQuantization.Recommended;
            if (first != 2) return null;
            int q = second();
            return q == 0 ? WeightQuantization.None : q == 2 ? WeightQuantization.Uint8 : (WeightQuantization?)null;
        }

        /// <summary>The precision a graph gets: `choice`, or with Recommended the measured best for its
        /// component (Sentis ModelQuantizer emulated on every graph, tests/unity/sentis_quantizer.py,
        /// docs "Quantize"): Float16 for the LLM and the flow (top-1 agreement and mel SNR kept);
        /// HiFT stays float32 — Float16 moves its f0 predictor's pitch and the sine source's phase
        /// drifts (waveform SNR 4 / 45 dB tiny / full size; 64 / 65 dB with the f0 predictor float32, which one model's
        /// quantization cannot do), and HiFT is small; graphs without weights stay as they are.</summary>
        public static WeightQuantization ForGraph(WeightQuantization choice, string component, string graph)
        {
            if (choice != WeightQuantization.Recommended) return choice;
            if (graph == "llm_cache_append") return WeightQuantization.None;  // no weights
            switch (component)
            {
                case "llm": case "flow": return WeightQuantization.Float16;
                default: return WeightQuantization.None;
            }
        }

        /// <summary>Entry point for `-executeMethod`; exits with code 1 on failure.</summary>
        public static void ImportFromCommandLine()
        {
            var args = Environment.GetCommandLineArgs();
            string bundle = Arg(args, "-sentisTtsBundle"), target = Arg(args, "-sentisTtsTarget"), quant = Arg(args, "-sentisTtsQuantize");
            try
            {
                if (string.IsNullOrEmpty(bundle)) throw new SentisTtsException("pass -sentisTtsBundle <bundle folder>");
                var q = WeightQuantization.Recommended;
                if (!string.IsNullOrEmpty(quant) && !Enum.TryParse(quant, true, out q))
                    throw new SentisTtsException("-sentisTtsQuantize must be recommended, none, float16 or uint8, got '" + quant + "'");
                Import(bundle, string.IsNullOrEmpty(target) ? "Assets/SentisTts/" + Path.GetFileName(bundle.TrimEnd('/', '\\')) : target, q);
                Debug.Log("sentis-tts: imported " + bundle);
            }
            catch (Exception e)
            {
                Debug.LogError("sentis-tts import failed: " + e.Message);
                EditorApplication.Exit(1);
            }
        }

        static string Arg(string[] args, string key)
        {
            for (int i = 0; i + 1 < args.Length; i++) if (args[i] == key) return args[i + 1];
            return null;
        }

        public static TtsBundleAsset Import(string bundleDir, string targetFolder, WeightQuantization quantization)
        {
            var manifest = BundleManifest.Load(bundleDir);
            manifest.VerifyOrThrow(bundleDir);
            if (!targetFolder.StartsWith("Assets/")) throw new SentisTtsException("target folder must be under Assets/, got " + targetFolder);
            Directory.CreateDirectory(targetFolder);
            var asset = ScriptableObject.CreateInstance<TtsBundleAsset>();
            asset.manifestJson = File.ReadAllText(Path.Combine(bundleDir, "manifest.json"));
            asset.quantization = quantization.ToString().ToLowerInvariant();

            // graphs
            var onnxPaths = new List<KeyValuePair<string, string>>();
            var precision = new Dictionary<string, WeightQuantization>();
            foreach (var g in manifest.Graphs.Values)
            {
                var dst = targetFolder + "/" + Path.GetFileName(g.File);
                File.Copy(Path.Combine(bundleDir, g.File), dst, true);
                onnxPaths.Add(new KeyValuePair<string, string>(g.Name, dst));
                precision[g.Name] = ForGraph(quantization, g.Component, g.Name);
            }
            AssetDatabase.Refresh();
            foreach (var kv in onnxPaths)
            {
                var onnx = AssetDatabase.LoadAssetAtPath<ModelAsset>(kv.Value);
                if (onnx == null) throw new SentisTtsException(kv.Value + ": Sentis did not import this graph (see the Console for the importer's error)");
                var model = onnx;
                var q = precision[kv.Key];
                if (q != WeightQuantization.None)
                {
                    var m = ModelLoader.Load(onnx);
                    ModelQuantizer.QuantizeWeights(q == WeightQuantization.Float16 ? QuantizationType.Float16 : QuantizationType.Uint8, ref m);
                    var sentisPath = Path.ChangeExtension(kv.Value, ".sentis");
                    ModelWriter.Save(sentisPath, m);
                    AssetDatabase.DeleteAsset(kv.Value);  // keep only the serialized model
                    AssetDatabase.ImportAsset(sentisPath);
                    model = AssetDatabase.LoadAssetAtPath<ModelAsset>(sentisPath);
                }
                asset.graphs.Add(new GraphModel { graph = kv.Key, model = model });
            }

            // tokenizer + voices: copied as .txt/.bytes so they import as TextAssets
            var text = manifest.Components.Obj("text");
            if (text != null && ModelFamilies.Of(manifest) == ModelFamily.ZipVoice)
            {
                asset.zipVoiceTokens = CopyText(bundleDir, text.Str("tokens"), targetFolder + "/tokens.txt");
                if (text.Str("kana_table") != null) asset.zipVoiceKana = CopyText(bundleDir, text.Str("kana_table"), targetFolder + "/kana.tsv.txt");
            }
            else if (text != null)
            {
                var dir = text.Str("dir") ?? "text";
                asset.vocabJson = CopyText(bundleDir, dir + "/vocab.json", targetFolder + "/vocab.json.txt");
                asset.mergesTxt = CopyText(bundleDir, dir + "/merges.txt", targetFolder + "/merges.txt");
                asset.specialTokensJson = CopyText(bundleDir, dir + "/special_tokens.json", targetFolder + "/special_tokens.json.txt");
            }
            var flow = manifest.Components.Obj("flow");
            if (flow != null && flow.Str("noise_file") != null)
                asset.flowNoise = CopyText(bundleDir, flow.Str("noise_file"), targetFolder + "/flow_noise.bytes");
            var voices = manifest.Root.Obj("voices");
            if (voices != null)
                foreach (var vname in voices.Order)
                {
                    var rel = voices.Obj(vname).Str("file");
                    asset.voices.Add(new VoiceBytes { name = vname, npz = CopyText(bundleDir, rel, targetFolder + "/voice_" + vname + ".bytes") });
                }

            var assetPath = targetFolder + "/TtsBundle.asset";
            AssetDatabase.CreateAsset(asset, assetPath);
            AssetDatabase.SaveAssets();
            return asset;
        }

        static TextAsset CopyText(string bundleDir, string rel, string dst)
        {
            File.Copy(Path.Combine(bundleDir, rel), dst, true);
            AssetDatabase.ImportAsset(dst);
            return AssetDatabase.LoadAssetAtPath<TextAsset>(dst);
        }
    }
}
