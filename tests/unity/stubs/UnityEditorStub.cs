// Compile-only stub: UnityEditor names used by the package's Editor assembly (no behaviour).
using System;

namespace UnityEditor
{
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MenuItem : Attribute { public MenuItem(string itemName) { } }

    public static class AssetDatabase
    {
        public static void Refresh() { }
        public static void ImportAsset(string path) { }
        public static bool DeleteAsset(string path) { return true; }
        public static T LoadAssetAtPath<T>(string assetPath) where T : UnityEngine.Object { return null; }
        public static void CreateAsset(UnityEngine.Object asset, string path) { }
        public static void SaveAssets() { }
    }

    public static class EditorUtility
    {
        public static string OpenFolderPanel(string title, string folder, string defaultName) { return ""; }
        public static bool DisplayDialog(string title, string message, string ok) { return true; }
        public static int DisplayDialogComplex(string title, string message, string ok, string cancel, string alt) { return 0; }
    }

    public static class EditorApplication { public static void Exit(int returnValue) { } }
    public static class Selection { public static UnityEngine.Object activeObject { get; set; } }
}
