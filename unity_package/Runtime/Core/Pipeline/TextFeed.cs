// Text arriving as a stream (e.g. from a chat model) for a bistream utterance
// (SpeakerLogic.SpeakStream / CosyVoiceSpeaker.SpeakStream): Push pieces from any thread, End when the
// text is complete. The speaker drains it once per frame into the pipeline's bistream session.
using System;
using System.Collections.Generic;

namespace SentisTts.Core.Pipeline
{
    public sealed class TextFeed
    {
        readonly Queue<string> pieces = new Queue<string>();
        bool ended;

        /// <summary>The next piece of text (spoken as it is: not normalised, tokenized piece by piece).</summary>
        public void Push(string text)
        {
            lock (pieces)
            {
                if (ended) throw new InvalidOperationException("TextFeed: Push after End");
                pieces.Enqueue(text ?? "");
            }
        }

        /// <summary>The text is complete: speech runs to its end.</summary>
        public void End() { lock (pieces) ended = true; }

        public bool Ended { get { lock (pieces) return ended; } }

        /// <summary>Hands every queued piece to `into`; returns true once End was called and all pieces were taken.</summary>
        public bool Drain(Action<string> into)
        {
            while (true)
            {
                string s;
                lock (pieces)
                {
                    if (pieces.Count == 0) return ended;
                    s = pieces.Dequeue();
                }
                into(s);
            }
        }
    }
}
