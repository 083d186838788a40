// Reader of a sentis-tts bundle's manifest.json (docs/bundle.md): graphs and their I/O contract,
// component sections, constants, extra files with sha256, voices.
using System;
using System.Collections.Generic;
using System.IO;

namespace SentisTts.Core
{
    public sealed class TensorSpec
    {
        public string Name;
        public DType DType;
        public string DTypeName;
        /// <summary>Dimensions; -1 where the manifest has a symbolic name (see DimNames).</summary>
        public int[] Shape;
        public string[] DimNames;

        public bool Accepts(int[] shape)
        {
            if (shape.Length != Shape.Length) return false;
            for (int i = 0; i < shape.Length; i++) if (Shape[i] >= 0 && Shape[i] != shape[i]) return false;
            return true;
        }

        public string ShapeText()
        {
            var parts = new string[Shape.Length];
            for (int i = 0; i < Shape.Length; i++) parts[i] = Shape[i] >= 0 ? Shape[i].ToString() : DimNames[i];
            return "[" + string.Join(", ", parts) + "]";
        }
    }

    public sealed class GraphEntry
    {
        public string Name, Component, File, Sha256;
        public List<TensorSpec> Inputs = new List<TensorSpec>();
        public List<TensorSpec> Outputs = new List<TensorSpec>();
        public JsonObject Raw;

        public TensorSpec Input(string name)
        {
            foreach (var t in Inputs) if (t.Name == name) return t;
            throw new SentisTtsException("graph " + Name + " has no input '" + name + "'");
        }
    }

    public sealed class BundleManifest
    {
        public const int SupportedSchema = 1;
        public int SchemaVersion;
        /// <summary>manifest["family"]: the model family (ModelFamilies); "cosyvoice2" when absent.</summary>
        public string Family = "cosyvoice2";
        public JsonObject Root, Constants, Components;
        public readonly Dictionary<string, GraphEntry> Graphs = new Dictionary<string, GraphEntry>();
        /// <summary>Extra files (tokenizer, voices, arrays): relative path -> sha256 (may be null).</summary>
        public readonly Dictionary<string, string> Files = new Dictionary<string, string>();

        public static BundleManifest Load(string bundleDir)
        {
            var path = Path.Combine(bundleDir, "manifest.json");
            if (!System.IO.File.Exists(path))
                throw new SentisTtsException(bundleDir + ": no manifest.json — not a sentis-tts bundle (create one with `sentis-tts export`)");
            return Parse(System.IO.File.ReadAllText(path), path);
        }

        public static BundleManifest Parse(string json, string where = "manifest.json", bool requireSchema = true)
        {
            var m = new BundleManifest();
            try { m.Root = Json.ParseObject(json); }
            catch (SentisTtsException e) { throw new SentisTtsException(where + ": " + e.Message); }
            var ver = m.Root.Get("schema_version") as JsonNumber;
            m.SchemaVersion = ver == null ? -1 : (int)ver.AsLong();
            if (requireSchema && m.SchemaVersion != SupportedSchema)
                throw new SentisTtsException(where + ": schema_version " + (ver == null ? "(missing)" : ver.Text) +
                                             " is not supported (this runtime reads " + SupportedSchema + ")");
            m.Family = m.Root.Str("family") ?? "cosyvoice2";
            ModelFamilies.Parse(m.Family, where);
            m.Constants = m.Root.Obj("constants") ?? new JsonObject();
            m.Components = m.Root.Obj("components") ?? new JsonObject();
            var graphs = m.Root.Obj("graphs");
            if (graphs == null) throw new SentisTtsException(where + ": missing or malformed 'graphs'");
            foreach (var name in graphs.Order)
            {
                var g = (JsonObject)graphs[name];
                var e = new GraphEntry { Name = name, Component = g.Str("component"), File = g.Str("file"), Sha256 = g.Str("sha256"), Raw = g };
                foreach (var i in g.Arr("inputs")) e.Inputs.Add(Spec((JsonObject)i));
                foreach (var o in g.Arr("outputs")) e.Outputs.Add(Spec((JsonObject)o));
                m.Graphs[name] = e;
            }
            var files = m.Root.Obj("files");
            if (files != null)
                foreach (var rel in files.Order) m.Files[rel] = ((JsonObject)files[rel]).Str("sha256");
            return m;
        }

        static TensorSpec Spec(JsonObject o)
        {
            var t = new TensorSpec { Name = o.Str("name"), DTypeName = o.Str("dtype") };
            t.DType = DTypes.Parse(t.DTypeName);
            var dims = o.Arr("shape");
            t.Shape = new int[dims.Count];
            t.DimNames = new string[dims.Count];
            for (int i = 0; i < dims.Count; i++)
            {
                var n = dims[i] as JsonNumber;
                if (n != null) t.Shape[i] = (int)n.AsLong();
                else { t.Shape[i] = -1; t.DimNames[i] = Convert.ToString(dims[i]); }
            }
            return t;
        }

        public bool HasComponent(string name) { return Components.ContainsKey(name); }

        public JsonObject Component(string name)
        {
            var c = Components.Obj(name);
            if (c == null) throw new SentisTtsException("the bundle has no '" + name + "' component (export it with `sentis-tts export " + name + "`)");
            return c;
        }

        public GraphEntry Graph(string name)
        {
            GraphEntry g;
            if (!Graphs.TryGetValue(name, out g)) throw new SentisTtsException("the bundle has no graph '" + name + "'");
            return g;
        }

        /// <summary>Every graph file and extra file with its recorded sha256.</summary>
        public IEnumerable<KeyValuePair<string, string>> HashedFiles()
        {
            foreach (var g in Graphs.Values) yield return new KeyValuePair<string, string>(g.File, g.Sha256);
            foreach (var f in Files) yield return f;
        }

        /// <summary>Check that every listed file exists under bundleDir and has its sha256.
        /// Returns the problems found (empty = valid).</summary>
        public List<string> Verify(string bundleDir)
        {
            var problems = new List<string>();
            foreach (var kv in HashedFiles())
            {
                var p = Path.Combine(bundleDir, kv.Key.Replace('/', Path.DirectorySeparatorChar));
                if (!System.IO.File.Exists(p)) { problems.Add(kv.Key + " is listed in manifest.json but missing"); continue; }
                if (string.IsNullOrEmpty(kv.Value)) continue;
                string h;
                using (var s = System.IO.File.OpenRead(p)) h = Hashing.Sha256Hex(s);
                if (h != kv.Value) problems.Add(kv.Key + " does not match its sha256 in manifest.json (modified or corrupt)");
            }
            return problems;
        }

        public void VerifyOrThrow(string bundleDir)
        {
            var p = Verify(bundleDir);
            if (p.Count > 0) throw new SentisTtsException(bundleDir + ": " + p[0] + (p.Count > 1 ? " (and " + (p.Count - 1) + " more)" : ""));
        }
    }
}
