using System;

namespace SentisTts.Core
{
    /// <summary>A problem the user can fix (bad bundle, text too long, …); the message says how.</summary>
    public class SentisTtsException : Exception
    {
        public SentisTtsException(string message) : base(message) { }
    }

    /// <summary>The request does not fit in the exported KV-cache capacity.</summary>
    public sealed class LlmCapacityException : SentisTtsException
    {
        public LlmCapacityException(string message) : base(message) { }
    }
}
