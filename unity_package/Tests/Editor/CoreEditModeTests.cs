// Edit-mode tests for Unity's Test Runner. They exercise Core inside the Unity runtime (Mono or
// IL2CPP scripting backends can differ from the Mono used in CI). Not run in CI (no Unity there).
using System.Collections.Generic;
using NUnit.Framework;
using SentisTts.Core;
using SentisTts.Core.Audio;
using SentisTts.Core.Sampling;
using SentisTts.Core.Text;

namespace SentisTts.Tests.Editor
{
    public class CoreEditModeTests
    {
        [Test]
        public void PretokenizerSplitsLikeQwen2()
        {
            var pieces = Pretokenizer.Split("Hello world's  12 \u00e9t\u00e9!!\n\n  x");
            Assert.AreEqual("Hello| world|'s| | |1|2| \u00e9t\u00e9|!!\n\n| | x", string.Join("|", pieces.ToArray()));
        }

        [Test]
        public void SamplerIsDeterministicForGivenUniforms()
        {
            var scores = new float[] { -1.2f, -0.3f, -2.5f, -0.9f, float.NegativeInfinity };
            var p = new RasParams();
            int a = Sampler.Ras(scores, new List<int>(), p, new ReplayUniforms(new[] { 0.25, 0.75 }));
            int b = Sampler.Ras(scores, new List<int>(), p, new ReplayUniforms(new[] { 0.25, 0.75 }));
            Assert.AreEqual(a, b);
            Assert.AreNotEqual(4, a);
        }

        [Test]
        public void ManifestRejectsUnknownSchema()
        {
            Assert.Throws<SentisTtsException>(() => BundleManifest.Parse("{\"schema_version\": 99, \"graphs\": {}}"));
        }

        [Test]
        public void RingBufferWraps()
        {
            var r = new AudioRingBuffer(4);
            Assert.AreEqual(3, r.Write(new float[] { 1, 2, 3 }, 0, 3));
            var y = new float[2];
            r.Read(y, 0, 2);
            Assert.AreEqual(3, r.Write(new float[] { 4, 5, 6 }, 0, 3));
            var z = new float[4];
            Assert.AreEqual(4, r.Read(z, 0, 4));
            Assert.AreEqual(new float[] { 3, 4, 5, 6 }, z);
        }
    }
}
