// Work that schedules graph calls and then needs their outputs on the host (the flow's mel, HiFT's
// audio), split at every readback so the main thread never waits for the GPU: Poll() runs it until
// the next readback that has not finished and returns at once (call it again in a later frame);
// Wait() runs it to the end, blocking on readbacks (tests, offline use). The body is an iterator
// that yields false while a readback is pending; disposing the job runs its finally blocks, which
// free the graph values in flight.
using System;
using System.Collections.Generic;

namespace SentisTts.Core
{
    public sealed class ReadbackJob<T> : IDisposable
    {
        IEnumerator<bool> body;
        bool blocking;
        public T Result;
        public bool Done { get; private set; }
        /// <summary>Graph calls and readbacks this job has waited on so far (polls that returned false).</summary>
        public int Polls { get; private set; }

        /// <param name="body">makes the iterator; it gets the job, so it can read `Blocking` and set `Result`</param>
        public ReadbackJob(Func<ReadbackJob<T>, IEnumerator<bool>> body) { this.body = body(this); }

        /// <summary>A job that is done already.</summary>
        public static ReadbackJob<T> Completed(T result) { var j = new ReadbackJob<T>(x => Empty()); j.Result = result; j.Poll(); return j; }

        static IEnumerator<bool> Empty() { yield break; }

        /// <summary>Readbacks block (Wait) instead of making Poll return.</summary>
        public bool Blocking { get { return blocking; } }

        /// <summary>Advance without waiting; true once done.</summary>
        public bool Poll()
        {
            if (Done) return true;
            blocking = false;
            while (body.MoveNext())
                if (!body.Current) { Polls++; return false; }
            Finish();
            return true;
        }

        /// <summary>Run to the end, waiting for readbacks.</summary>
        public T Wait()
        {
            if (Done) return Result;
            blocking = true;
            while (body.MoveNext()) { }
            Finish();
            return Result;
        }

        void Finish() { Done = true; body.Dispose(); }

        public void Dispose() { if (body != null) body.Dispose(); Done = true; }

        /// <summary>For bodies: true when `v` is on the host in `into` (Blocking: waits for it).</summary>
        public bool Ready(IGraphRunner runner, GraphValue v, HostTensor into)
        {
            if (runner.TryRead(v, into)) return true;
            if (!blocking) return false;
            HostTensor.CopyData(runner.Read(v), into);
            return true;
        }
    }
}
