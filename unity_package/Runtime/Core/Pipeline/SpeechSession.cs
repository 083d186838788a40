// One piece's synthesis over a SpeechPipeline, the schedule every CosyVoice family shares
// (runtime_ref Pipeline._stream_piece): the LLM decodes; streaming, a chunk is due when hop + the
// flow's look-ahead tokens exist (the first hop padded so prompt + hop is a multiple of
// chunk_size; the hop doubles up to MaxHop), the flow runs on the tokens so far with streaming
// masks (finalize=false) and its new frames go to the vocoder; at the end the flow runs on all
// tokens (non-streaming, finalize=true) and the vocoder finishes. The LLM waits while a chunk's
// flow/vocoder work is in flight (runtime_ref's order of graph calls).
// Tick spreads this over frames without waiting for the GPU; Advance waits (tests, offline use).
// A family's session gives the vocoder (VocodeJob) and, where it differs from the LLM's, the
// tokens the flow sees (TakeTokens / FlowTokens / Finishing).
using System;
using System.Collections.Generic;
using SentisTts.Core.Audio;
using SentisTts.Core.Llm;

namespace SentisTts.Core.Pipeline
{
    public abstract class SpeechSession : IDisposable
    {
        readonly SpeechPipeline p;
        /// <summary>The request this session runs (bistream: r with no text, streaming).</summary>
        protected readonly SynthesisRequest Request;
        protected readonly FlowPrompt FlowPrompt;
        readonly Action<float[]> onAudio;
        ITokenSession llm;
        LlmGenerator.BistreamSession bistream;
        int offset, hop, promptPad;
        bool chunkDue, finishDue, finishing;
        // the flow/vocoder work of a chunk (or of the end) in flight: its mel, then its audio
        ReadbackJob<Mel> melJob;
        ReadbackJob<float[]> wavJob;
        int melFrom;

        public bool Done { get; private set; }
        /// <summary>The tokens the flow got, stop reason and prompt length of the LLM.</summary>
        public virtual Generation Result { get { return llm.Result; } }

        protected SpeechSession(SpeechPipeline p, SynthesisRequest request, Action<float[]> onAudio)
        {
            this.p = p; Request = request; this.onAudio = onAudio;
            FlowPrompt = p.FlowPromptFor(request);
            hop = p.TokenHop;
            int P = FlowPrompt.Tokens.Length;
            promptPad = (P + p.TokenHop - 1) / p.TokenHop * p.TokenHop - P;
        }

        /// <summary>The subclass's constructor hands over its LLM session last (its vocoder state is ready).</summary>
        protected void Start(ITokenSession llm)
        {
            this.llm = llm;
            bistream = llm as LlmGenerator.BistreamSession;
            if (llm.Done) StartFinish();
        }

        protected ITokenSession Llm { get { return llm; } }

        /// <summary>A bistream session's request: r without text (it is pushed), always streaming.</summary>
        protected static SynthesisRequest BistreamRequest(SynthesisRequest r)
        {
            return new SynthesisRequest { Text = "", Voice = r.Voice, Mode = r.Mode, InstructText = r.InstructText, Streaming = true,
                                          MaxNewTokens = r.MaxNewTokens, Uniforms = r.Uniforms, Noise = r.Noise, Seed = r.Seed };
        }

        /// <summary>After each LLM token: true when the flow's tokens grew (CosyVoice3 cuts long silences).</summary>
        protected virtual bool TakeTokens() { return true; }

        /// <summary>The tokens the flow sees.</summary>
        protected virtual List<int> FlowTokens { get { return llm.Result.Tokens; } }

        /// <summary>The LLM has stopped (or was cancelled); the end's flow/vocoder work starts next.</summary>
        protected virtual void Finishing() { }

        /// <summary>The vocoder's work for a flow mel: its frames from `newFrom` on are new (streaming:
        /// all earlier ones were vocoded); `final`: the utterance ends with it. Result: the samples to play.</summary>
        protected abstract ReadbackJob<float[]> VocodeJob(Mel mel, int newFrom, bool final);

        /// <summary>Run up to `steps` decode steps (and the flow/vocoder work they trigger), waiting for
        /// readbacks (tests, offline use). A game uses Tick.</summary>
        public void Advance(int steps)
        {
            for (int k = 0; k < steps && !Done; k++)
            {
                LlmGenerator.Status st;
                while ((st = llm.Work(true)) == LlmGenerator.Status.Working) { }
                if (st == LlmGenerator.Status.Waiting)
                    throw new InvalidOperationException("bistream: the schedule needs more text; PushText or EndText before Advance");
                if (st == LlmGenerator.Status.Token && TakeTokens() && Request.Streaming && ChunkReady()) { StartChunk(); PollJobs(true); }
                if (llm.Done) { StartFinish(); PollJobs(true); }
            }
        }

        /// <summary>Bistream only: the next piece of text (tokenized as it is).</summary>
        public void PushText(string text)
        {
            if (bistream == null) throw new InvalidOperationException("PushText needs a session started with BeginBistream");
            if (!string.IsNullOrEmpty(text)) bistream.PushText(p.Tokenizer.Encode(text));
        }

        /// <summary>Bistream only: the text is complete.</summary>
        public void EndText()
        {
            if (bistream == null) throw new InvalidOperationException("EndText needs a session started with BeginBistream");
            bistream.EndText();
        }

        /// <summary>Bistream: waiting for text (Tick returns at once until PushText/EndText).</summary>
        public bool NeedsText { get { return bistream != null && bistream.NeedsText; } }

        bool Busy { get { return melJob != null || wavJob != null; } }

        /// <summary>A chunk's (or the end's) flow/vocoder work is in flight (its readbacks pending).</summary>
        public bool VocodingInFlight { get { return Busy; } }

        /// <summary>Non-blocking: schedules work until `overBudget()` says the frame's time is
        /// used, `maxTokens` tokens came, or a readback is in flight (the LLM's log-probs, a chunk's
        /// mel or audio: the frame ends and the work goes on next frame); a streaming chunk (flow +
        /// vocoder) and the final vocoding each start only at the beginning of a frame or when the
        /// budget still allows; the LLM waits while a chunk is in flight (runtime_ref's order).
        /// Returns Done. Call once per frame.</summary>
        public bool Tick(Func<bool> overBudget, int maxTokens = int.MaxValue)
        {
            int tokens = 0;
            bool first = true;
            while (!Done)
            {
                if (!first && overBudget()) break;
                first = false;
                if (Busy) { if (!PollJobs(false)) break; continue; }
                if (finishDue) { finishDue = false; StartFinish(); continue; }
                if (chunkDue) { chunkDue = false; StartChunk(); continue; }
                if (finishing) break;
                var st = llm.Work();
                if (st == LlmGenerator.Status.Waiting) break;
                if (st == LlmGenerator.Status.Token)
                {
                    tokens++;
                    if (TakeTokens() && Request.Streaming) chunkDue = ChunkReady();
                }
                if (llm.Done) { if (chunkDue) continue; finishDue = true; }
                if (tokens >= maxTokens) break;
            }
            if (llm.Done && !chunkDue && !Done && !finishDue && !finishing) finishDue = true;
            return Done;
        }

        int ThisHop { get { return offset == 0 ? hop + promptPad : hop; } }

        bool ChunkReady() { return FlowTokens.Count - offset >= ThisHop + p.PreLookahead; }

        ReadbackJob<Mel> StartMel(List<int> tokens, bool streaming, bool finalize)
        {
            var a = p.Flow as IAsyncFlowStage;
            if (a != null) return a.Start(tokens, FlowPrompt, streaming, finalize);
            return ReadbackJob<Mel>.Completed(p.Flow.TokensToMel(tokens, FlowPrompt, streaming, finalize));
        }

        // streaming: vocode when hop (+ prompt padding for the first) + look-ahead tokens exist
        void StartChunk()
        {
            int thisHop = ThisHop;
            melJob = StartMel(FlowTokens.GetRange(0, offset + thisHop + p.PreLookahead), true, false);
            melFrom = offset * p.TokenMelRatio;
            offset += thisHop;
            hop = Math.Min(p.MaxHop, hop * 2);
        }

        void StartFinish()
        {
            finishing = true;
            Finishing();
            var tokens = FlowTokens;
            if (tokens.Count == 0 || llm.Result.StopReason == "cancelled") { Done = true; return; }
            melJob = StartMel(tokens, false, true);  // official: the last call is not streaming
            melFrom = offset * p.TokenMelRatio;
        }

        /// <summary>Advance the chunk in flight; true when none is left (wait: block on readbacks).</summary>
        bool PollJobs(bool wait)
        {
            if (melJob != null)
            {
                if (wait) melJob.Wait(); else if (!melJob.Poll()) return false;
                var mel = melJob.Result;
                melJob.Dispose(); melJob = null;
                wavJob = VocodeJob(mel, melFrom, finishing);
            }
            if (wavJob != null)
            {
                if (wait) wavJob.Wait(); else if (!wavJob.Poll()) return false;
                var a = wavJob.Result;
                wavJob.Dispose(); wavJob = null;
                if (finishing) { Done = true; onAudio(a); }
                else if (a.Length > 0) onAudio(a);
            }
            return true;
        }

        void DisposeJobs()
        {
            if (melJob != null) { melJob.Dispose(); melJob = null; }
            if (wavJob != null) { wavJob.Dispose(); wavJob = null; }
        }

        /// <summary>Stop now: frees the LLM's and the chunk's values in flight; Result.StopReason = "cancelled".</summary>
        public void Cancel()
        {
            llm.Result.StopReason = "cancelled";
            Result.StopReason = "cancelled";
            DisposeJobs();
            llm.Dispose();
            Done = true;
        }

        public bool Cancelled { get { return Result.StopReason == "cancelled"; } }

        /// <summary>Frees what the session holds (idempotent).</summary>
        public void Dispose() { DisposeJobs(); llm.Dispose(); }
    }
}
