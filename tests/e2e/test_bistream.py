"""Bistream (text arriving as a stream, official inference_bistream schedule): onnxruntime vs the
PyTorch reference driving the same control logic, and speech that starts before the text ends."""
import numpy as np
import pytest

from exporter.reference_pipeline import snr_db

CHUNKS = ["Once upon a time, ", "in a small village ", "by the sea, there lived ", "an old fisherman ",
          "who talked to the waves ", "every single morning."]


@pytest.mark.parametrize("mode", ["zero_shot", "cross_lingual"])
def test_bistream_matches_pytorch(e2e, mode):
    ours, ref = e2e
    a = list(ours.stream_bistream(iter(CHUNKS), "demo", mode=mode, seed=4, max_new_tokens=80))
    b = list(ref.stream_bistream(iter(CHUNKS), "demo", mode=mode, seed=4, max_new_tokens=80))
    assert [c.size for c in a] == [c.size for c in b] and len(a) >= 2
    assert snr_db(np.concatenate(b), np.concatenate(a)) >= 40


def test_bistream_speaks_before_the_text_is_complete(e2e):
    ours, _ = e2e
    pulled = []

    def text():
        for c in CHUNKS * 3:
            pulled.append(c)
            yield c

    gen = ours.stream_bistream(text(), "demo", mode="cross_lingual", seed=4, max_new_tokens=120)
    first = next(gen)
    assert first.size > 0
    assert len(pulled) < len(CHUNKS) * 3  # audio came out while text was still to arrive
    rest = list(gen)
    assert rest


def test_bistream_fill_schedule():
    """The schedule on a scripted engine: 5 text rows per fill, 15 speech tokens between fills,
    EOS masked while text streams, final text + task_id fed when the stream ends."""
    from runtime_ref.bistream import bistream_tokens
    from runtime_ref.sampling import RasParams

    V, d = 40, 4  # speech_token_size 37 -> eos 37, fill 39

    class Engine:
        hidden = d
        fed: list[int] = []

        def embed_text(self, ids):
            return np.full((len(np.asarray(ids).reshape(-1)), d), 1.0, np.float32)

        def embed_speech(self, ids):
            return np.full((len(np.asarray(ids).reshape(-1)), d), 2.0, np.float32)

        def sos_task(self):
            return np.array([[9.0] * d, [7.0] * d], np.float32)

        def feed(self, rows):
            self.fed.append(rows.shape[0])
            logp = np.full(V, -10.0, np.float32)
            logp[37] = 0.0  # EOS is the favourite: masked while text streams
            logp[3] = -1.0
            return logp

    eng = Engine()
    greedy = lambda scores, decoded, params, rng: int(np.argmax(scores))  # noqa: E731
    toks = list(bistream_tokens(range(12), [], [], engine=eng, sample=greedy, params=RasParams(0.8, 25, 10, 0.1),
                                rng=None, mix_ratio=(5, 15), speech_token_size=37))
    # cross-lingual: [sos + 5 text] then 15 tokens, fill, [5 text] 15 tokens, fill; stream ends with 2 text rows
    # left -> rows re-fed + 2 text + task_id, then EOS immediately
    assert toks == [3] * 30
    assert eng.fed[0] == 6 and eng.fed[1:15] == [1] * 14
    assert eng.fed[-1] == 1 + 2 + 1
