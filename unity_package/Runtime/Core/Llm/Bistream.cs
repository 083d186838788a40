// Bistream: text arriving in pieces while the LLM decodes (official Qwen2LM.inference_bistream).
// Mirrors runtime_ref/bistream.py bistream_tokens call for call (pinned by the bistream_* golden
// traces of runtime_ref.pipeline.Pipeline.stream_bistream):
//   - the sequence starts with [sos]; while prompt speech tokens remain, groups of mix_ratio[0] = 5
//     text rows + mix_ratio[1] = 15 prompt-speech rows are appended as text arrives;
//   - then speech tokens are decoded with EOS masked; a fill token (speech_token_size + 2) is forced
//     when the decoded count (fill tokens included) reaches next_fill (first at the next multiple of
//     15 after the prompt speech, then every 15 + 1) and means "feed the next 5 text rows"; a
//     sampled fill token does the same;
//   - when the text ends: the rest of the text rows + task_id are fed (after a fill token, together
//     with the rows fed before it: the official quirk) and decoding runs until EOS, unmasked;
//   - every feed is a prefill of the pending rows in zero-padded chunks (prefill_chunk rows), each
//     text id is embedded as it arrives (one lookup per id), each speech token is embedded and its
//     row read back (it joins the host-side pending rows);
//   - fill tokens count in the sampler's repetition window; any other special token is an error.
// CosyVoice3 (runtime_ref CosyVoice3Pipeline.bistream_prompt): eos / fill are the manifest's
// eos_token / fill_token (speech_token_size + 1 / + 3; the index masked while text streams stays
// min_len_masked_token = speech_token_size, sos there), and the prompt text up to <|endofprompt|>
// is fed right after sos (prefixIds) instead of being mixed.
// The token sequence does not depend on when text arrives: the schedule takes text only when it
// needs it, and Work returns Waiting until more text or EndText comes. Readbacks are asynchronous
// (Work never waits unless asked to); disposing the session frees every value it holds.
using System;
using System.Collections.Generic;
using SentisTts.Core.Sampling;

namespace SentisTts.Core.Llm
{
    public sealed partial class LlmGenerator
    {
        /// <summary>A bistream generation: push text ids as they arrive (PushText), EndText when the
        /// text is complete; Work advances it. `maxNewTokens` &lt; 0: no cap (the caller passes the
        /// flow's room, as runtime_ref's token_cap). `prefixIds` are fed right after sos (CosyVoice3:
        /// the prompt text up to &lt;|endofprompt|&gt;; runtime_ref bistream_tokens prefix_ids).</summary>
        public BistreamSession BeginBistream(IList<int> promptTextIds, IList<int> promptSpeech, ITokenSampler sampler, IUniformSource rng,
                                             int maxNewTokens = -1, IList<int> prefixIds = null)
        {
            foreach (var t in promptSpeech)
                if (t < 0 || t >= SpeechVocab) throw new SentisTtsException("speech token ids must be in 0.." + (SpeechVocab - 1) + ", got " + t);
            return new BistreamSession(this, promptTextIds, promptSpeech, sampler, rng, maxNewTokens, prefixIds ?? new int[0]);
        }

        /// <summary>mix_ratio of the bundle (text rows, speech rows per group); (5, 15) when absent.</summary>
        public int[] MixRatio()
        {
            var c = manifest.Component("llm");
            return c.ContainsKey("mix_ratio") ? Json.IntArray(c.Get("mix_ratio")) : new[] { 5, 15 };
        }

        public sealed class BistreamSession : ITokenSession
        {
            readonly LlmGenerator g;
            readonly ITokenSampler sampler;
            readonly IUniformSource rng;
            readonly int maxNew, nText, nSpeech, speechTokenSize, eos, fill, d;
            readonly int[] promptText, promptSpeech, prefix;
            readonly Queue<int> textIn = new Queue<int>();
            readonly List<int> decoded = new List<int>();  // the sampler's history: fill tokens included
            readonly Generation result = new Generation();
            readonly HostTensor logp, rowsT;
            readonly IEnumerator<Status> run;
            Decoder dec;
            float[] lastRows;
            bool wait, textEnded;

            public Generation Result { get { return result; } }
            public bool Done { get; private set; }
            public int LastToken { get; private set; }
            /// <summary>EndText was called.</summary>
            public bool TextEnded { get { return textEnded; } }
            /// <summary>Text ids pushed but not yet taken by the schedule.</summary>
            public int TextQueued { get { return textIn.Count; } }
            /// <summary>Waiting for text: nothing queued, the text not ended, and the schedule needs more.</summary>
            public bool NeedsText { get; private set; }

            internal BistreamSession(LlmGenerator g, IList<int> promptText, IList<int> promptSpeech, ITokenSampler sampler, IUniformSource rng, int maxNew,
                                     IList<int> prefix)
            {
                this.g = g; this.sampler = sampler; this.rng = rng; this.maxNew = maxNew;
                var mix = g.MixRatio();
                nText = mix[0]; nSpeech = mix[1];
                var c = g.manifest.Component("llm");
                // runtime_ref: the index masked while text streams is min_len_masked (CosyVoice2: = eos;
                // CosyVoice3: sos), eos and fill from the manifest (CosyVoice2 eos + 2 when absent)
                speechTokenSize = g.MinLenMasked;
                eos = g.Eos;
                fill = c.ContainsKey("fill_token") ? c.Int("fill_token") : g.Eos + 2;
                d = g.Hidden;
                this.promptText = new int[promptText.Count]; promptText.CopyTo(this.promptText, 0);
                this.promptSpeech = new int[promptSpeech.Count]; promptSpeech.CopyTo(this.promptSpeech, 0);
                this.prefix = new int[prefix.Count]; prefix.CopyTo(this.prefix, 0);
                logp = new HostTensor(new[] { 1, g.SpeechVocab }, new float[g.SpeechVocab]);
                rowsT = new HostTensor(new[] { 1, g.Chunk, g.Hidden }, new float[g.Chunk * g.Hidden]);
                result.PromptLength = 1 + prefix.Count + promptText.Count + promptSpeech.Count;
                run = Body();
            }

            public void PushText(IList<int> ids)
            {
                if (textEnded) throw new InvalidOperationException("bistream: text pushed after EndText");
                foreach (var i in ids) textIn.Enqueue(i);
            }

            public void EndText() { textEnded = true; }

            public Status Work(bool wait = false)
            {
                if (Done) return Status.Done;
                this.wait = wait;
                NeedsText = false;
                if (!run.MoveNext()) { Finish(); return Status.Done; }
                return run.Current;
            }

            bool Capped { get { return maxNew >= 0 && result.Tokens.Count >= maxNew; } }

            bool Ready(GraphValue v, HostTensor into)
            {
                if (g.runner.TryRead(v, into)) return true;
                if (!wait) return false;
                HostTensor.CopyData(g.runner.Read(v), into);
                return true;
            }

            /// <summary>Embedding rows of `ids` into lastRows (no graph call for no ids, as runtime_ref).</summary>
            IEnumerable<Status> Lookup(string graph, IList<int> ids)
            {
                lastRows = new float[0];
                if (ids.Count == 0) yield break;
                var o = g.Lookup(graph, ids);
                try
                {
                    yield return Status.Working;
                    var v = o[g.manifest.Graph(graph).Outputs[0].Name];
                    var into = HostTensor.Zeros(v.Shape, DType.Float32);
                    g.runner.RequestRead(v);
                    while (!Ready(v, into)) yield return Status.Waiting;
                    lastRows = into.Floats;
                }
                finally { o.Dispose(); }
            }

            /// <summary>runtime_ref OrtFeeder.feed: prefill `rows` at the current position (zero-padded
            /// chunks); the log-probs after the last row land in `logp`.</summary>
            IEnumerable<Status> Feed(List<float> rows)
            {
                int L = rows.Count / d;
                if (dec.Position + L > g.Capacity)
                    throw new LlmCapacityException("bistream: the LLM cache (" + g.Capacity + " positions) is full; send shorter text streams or re-export with a larger --max-cache-len");
                GraphOutputs last = null;
                try
                {
                    for (int s = 0; s < L; s += g.Chunk)
                    {
                        int n = Math.Min(g.Chunk, L - s);
                        Array.Clear(rowsT.Floats, 0, rowsT.Floats.Length);
                        rows.CopyTo(s * d, rowsT.Floats, 0, n * d);
                        var outs = dec.RunStep(rowsT, n);
                        if (s + g.Chunk >= L) last = outs; else outs.Dispose();
                        yield return Status.Working;
                    }
                    var lp = last["logprobs"];
                    g.runner.RequestRead(lp);
                    while (!Ready(lp, logp)) yield return Status.Waiting;
                }
                finally { if (last != null) last.Dispose(); }
            }

            static void MoveFront(List<float> from, List<float> to, int n)
            {
                n = Math.Min(n, from.Count);
                for (int i = 0; i < n; i++) to.Add(from[i]);
                from.RemoveRange(0, n);
            }

            Status Emit(int tok)
            {
                result.Tokens.Add(tok);
                LastToken = tok;
                return Status.Token;
            }

            IEnumerator<Status> Body()
            {
                foreach (var st in Lookup(g.SpecialEmbedding, new[] { g.SosId, g.TaskId })) yield return st;
                var sosTask = lastRows;
                foreach (var st in Lookup(g.SpeechEmbedding, promptSpeech)) yield return st;
                var speechRows = new List<float>(lastRows);
                foreach (var st in Lookup(g.TextEmbedding, promptText)) yield return st;
                var textRows = new List<float>(lastRows);
                var pending = new List<float>(d);
                for (int i = 0; i < d; i++) pending.Add(sosTask[i]);
                foreach (var st in Lookup(g.TextEmbedding, prefix)) yield return st;
                pending.AddRange(lastRows);  // official lm_input: sos (+ the prefix), fed at the next forward
                int P = promptSpeech.Length;
                int nextFill = (P / nSpeech + 1) * nSpeech - P;
                dec = new Decoder(g);
                var one = new int[1];
                while (true)  // for tid in text_ids
                {
                    while (textIn.Count == 0 && !textEnded) { NeedsText = true; yield return Status.Waiting; }
                    if (textIn.Count == 0) break;
                    one[0] = textIn.Dequeue();
                    foreach (var st in Lookup(g.TextEmbedding, one)) yield return st;
                    textRows.AddRange(lastRows);
                    while (speechRows.Count > 0)
                    {
                        if (textRows.Count < nText * d) break;
                        MoveFront(textRows, pending, nText * d);
                        MoveFront(speechRows, pending, nSpeech * d);
                    }
                    if (speechRows.Count > 0) continue;
                    bool afterFill = decoded.Count > 0 && decoded[decoded.Count - 1] == fill;
                    if (afterFill || (decoded.Count == 0 && pending.Count == d))
                    {
                        if (textRows.Count < nText * d) continue;
                        if (afterFill) pending.Clear();
                        MoveFront(textRows, pending, nText * d);
                    }
                    while (!Capped)
                    {
                        foreach (var st in Feed(pending)) yield return st;
                        int tok;
                        if (decoded.Count == nextFill) { tok = fill; nextFill += nSpeech + 1; }
                        else
                        {
                            logp.Floats[speechTokenSize] = float.NegativeInfinity;  // official sampling_ids(ignore_eos=True)
                            tok = sampler.Sample(logp.Floats, decoded, rng);
                        }
                        if (tok == fill) nextFill = decoded.Count + nSpeech + 1;
                        decoded.Add(tok);
                        if (tok >= speechTokenSize)
                        {
                            if (tok == fill) break;
                            throw new SentisTtsException("bistream: the model produced special token " + tok + " while text was streaming");
                        }
                        yield return Emit(tok);
                        one[0] = tok;
                        foreach (var st in Lookup(g.SpeechEmbedding, one)) yield return st;
                        pending.Clear();
                        pending.AddRange(lastRows);
                    }
                    if (Capped) { result.StopReason = "max_len"; yield break; }
                }
                // the text stream ended: the rest of the text + task_id, then decode until EOS
                pending.AddRange(textRows);
                for (int i = 0; i < d; i++) pending.Add(sosTask[d + i]);
                while (!Capped)
                {
                    foreach (var st in Feed(pending)) yield return st;
                    int tok = sampler.Sample(logp.Floats, decoded, rng);
                    decoded.Add(tok);
                    if (tok >= speechTokenSize)
                    {
                        if (tok == eos) { result.StopReason = "stop_token"; result.StopToken = tok; yield break; }
                        throw new SentisTtsException("bistream: the model produced special token " + tok + " instead of speech or EOS");
                    }
                    yield return Emit(tok);
                    one[0] = tok;
                    foreach (var st in Lookup(g.SpeechEmbedding, one)) yield return st;
                    pending.Clear();
                    pending.AddRange(lastRows);
                }
                result.StopReason = "max_len";
            }

            void Finish()
            {
                Done = true;
                run.Dispose();  // runs the pending finally blocks: lookups and step outputs in flight are freed
                if (dec != null) { dec.Dispose(); dec = null; }
            }

            public void Dispose() { if (!Done) Finish(); }
        }
    }
}
