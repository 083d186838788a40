// Compile-only stub of the NUnit names the package's edit-mode tests use (no behaviour).
using System;

namespace NUnit.Framework
{
    [AttributeUsage(AttributeTargets.Method)] public sealed class TestAttribute : Attribute { }
    public delegate void TestDelegate();
    public static class Assert
    {
        public static void AreEqual(object expected, object actual) { }
        public static void AreNotEqual(object expected, object actual) { }
        public static void IsTrue(bool condition) { }
        public static T Throws<T>(TestDelegate code) where T : Exception { return null; }
    }
}
