// The runtime side of the family layer: manifest["family"] names the model family a bundle was
// exported from (exporter/families/ on the Python side, runtime_ref/families.py in the reference
// runtime). Each family has its own pipeline class; callers pick it with ModelFamilies.Of.
using System;

namespace SentisTts.Core
{
    public enum ModelFamily { CosyVoice2, ZipVoice, CosyVoice3 }

    public static class ModelFamilies
    {
        public static ModelFamily Parse(string name, string where = "manifest.json")
        {
            switch (name ?? "cosyvoice2")
            {
                case "cosyvoice2": return ModelFamily.CosyVoice2;
                case "zipvoice": return ModelFamily.ZipVoice;
                case "cosyvoice3": return ModelFamily.CosyVoice3;  // CosyVoice3Pipeline
                default:
                    throw new SentisTtsException(where + ": bundle family '" + name +
                                                 "' is not supported by this runtime (known: cosyvoice2, zipvoice, cosyvoice3)");
            }
        }

        public static ModelFamily Of(BundleManifest m) { return Parse(m.Family); }

        public static string Name(ModelFamily f) { return f == ModelFamily.ZipVoice ? "zipvoice" : f == ModelFamily.CosyVoice3 ? "cosyvoice3" : "cosyvoice2"; }

        /// <summary>Throws unless the bundle is of family `want` (a pipeline built on the wrong bundle
        /// fails in one clear line instead of on a missing graph).</summary>
        public static void Require(BundleManifest m, ModelFamily want, string who)
        {
            var got = Of(m);
            if (got != want)
                throw new SentisTtsException(who + " runs " + Name(want) + " bundles; this bundle is " + Name(got) +
                                             " (pick the pipeline with ModelFamilies.Of(manifest))");
        }
    }
}
