"""Data tasks: the adding problem, the embedded Reber grammar, characters of a text; and their metrics."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import to_numpy
from xrnn import data

# ------------------------------------------------------------------------------ adding problem


def test_adding_problem_marks_one_value_in_each_half_and_targets_their_sum():
    x, target = data.adding_problem(200, 10, seed=0, xp="numpy", dtype="float64")
    assert x.shape == (10, 200, 2) and target.shape == (200, 1)
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert np.all(markers[:5].sum(axis=0) == 1) and np.all(markers[5:].sum(axis=0) == 1)
    assert np.allclose(target[:, 0], (values * markers).sum(axis=0))


def test_always_predicting_one_scores_about_one_sixth():
    _, target = data.adding_problem(20000, 4, seed=1, xp="numpy", dtype="float64")
    assert np.mean((target - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.005)


def test_adding_problem_is_the_same_on_every_backend_for_a_seed(xp, dtype):
    x, target = data.adding_problem(3, 6, seed=5, xp=xp, dtype=dtype)
    ref_x, ref_target = data.adding_problem(3, 6, seed=5, xp="numpy", dtype=dtype)
    assert array_namespace(x) is xp and str(x.dtype).endswith(dtype)
    assert np.array_equal(to_numpy(x), ref_x) and np.array_equal(to_numpy(target), ref_target)


@pytest.mark.parametrize(("n", "seq_len"), [(0, 5), (2, 1), (2.0, 5)])
def test_adding_problem_sizes_are_checked(n, seq_len):
    with pytest.raises(ValueError, match="must be (an int >=|a positive int)"):
        data.adding_problem(n, seq_len)


# ------------------------------------------------------------------------ embedded Reber grammar


def test_embedded_reber_strings_repeat_the_second_symbol_around_a_reber_string():
    strings = data.embedded_reber(500, seed=0)
    for s in strings:
        assert s[0] == "B" and s[-1] == "E" and s[1] in "TP" and s[-2] == s[1], s
    assert {s[1] for s in strings} == {"T", "P"}


def _walks(inner: str) -> bool:
    """Walk the Reber automaton by hand (independent of data._REBER_GRAPH)."""
    graph = {
        "start": {"T": "a", "P": "b"},
        "a": {"S": "a", "X": "c"},
        "b": {"T": "b", "V": "d"},
        "c": {"X": "b", "S": "end"},
        "d": {"P": "c", "V": "end"},
        "end": {"E": None},
    }
    if not inner.startswith("B"):
        return False
    node = "start"
    for ch in inner[1:]:
        if node is None or ch not in graph[node]:
            return False
        node = graph[node][ch]
    return node is None


def test_every_generated_inner_string_is_accepted_by_an_independent_automaton():
    assert all(_walks(s[2:-2]) for s in data.embedded_reber(500, seed=1))


def test_reber_successors_of_a_known_string():
    # B T B P V V E T E: after the inner E only the opening T may follow
    allowed = data.reber_successors("BTBPVVETE")
    assert [set(a) for a in allowed] == [set(a) for a in ["TP", "B", "TP", "TV", "PV", "E", "T", "E"]]


@pytest.mark.parametrize("bad", ["BTBPVVEPE", "BTBPXVETE", "BTE", "XTBPVVETE"])
def test_strings_outside_the_grammar_are_refused(bad):
    with pytest.raises(ValueError, match="string must"):
        data.reber_successors(bad)


def test_reber_batch_pads_and_masks_and_marks_the_legal_symbols(xp):
    batch = data.reber_batch(["BTBPVVETE", "BPBTXSEPE", "BTBTSXSETE"], xp=xp, dtype="float64")
    x, targets, mask, legal = (to_numpy(a) for a in batch)
    assert x.shape == (9, 3, 7) and targets.shape == mask.shape == (9, 3) and legal.shape == (9, 3, 7)
    assert mask.sum(axis=0).tolist() == [8, 8, 9]
    assert "".join(data.REBER_SYMBOLS[i] for i in x[:8, 0].argmax(-1)) == "BTBPVVET"
    assert "".join(data.REBER_SYMBOLS[i] for i in targets[:8, 0]) == "TBPVVETE"
    assert np.all(x[8, :2] == 0) and np.all(legal[8, :2] == 0)
    assert np.all(legal[np.arange(9)[:, None], np.arange(3), targets][mask])  # the true next symbol is legal


def test_reber_metric_scores_a_perfect_model_one_and_a_memoryless_one_at_the_baseline():
    task = xrnn.ReberTask(eval_size=200, xp="numpy")

    class Oracle:
        """Logits that rank exactly the legal symbols first; optionally forgetting the opening symbol."""

        def __init__(self, memory: bool) -> None:
            self.memory = memory

        def forward(self, x):
            strings = data.embedded_reber(200, seed=task._held_out_rng())
            legal = to_numpy(data.reber_batch(strings, xp="numpy").legal).astype(np.float32)
            if not self.memory:  # the step after the inner E: guess T whatever opened the string
                for j, s in enumerate(strings):
                    legal[len(s) - 3, j] = 0.0
                    legal[len(s) - 3, j, data.REBER_SYMBOLS.index("T")] = 1.0
            return legal, None, None

    perfect = task.evaluate(Oracle(memory=True))
    forgetful = task.evaluate(Oracle(memory=False))
    assert perfect.value == 1.0 and perfect.higher_is_better
    assert forgetful.value == pytest.approx(forgetful.baseline, abs=0.01)
    assert 0.9 < forgetful.baseline < 0.99


# ------------------------------------------------------------------------------------ text


def test_zen_of_python_is_read_without_printing_it(capsys):
    text = data.zen_of_python()
    assert text.startswith("The Zen of Python, by Tim Peters")
    assert "Beautiful is better than ugly." in text and "Namespaces are one honking great idea" in text
    assert capsys.readouterr().out == ""


def test_read_corpus_reads_a_utf8_file(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("À la claire fontaine\n", encoding="utf-8")
    assert data.read_corpus(path) == "À la claire fontaine\n"
    assert data.read_corpus() == data.zen_of_python()


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"\xff\xfe\x00bad", "is not UTF-8 text"),
        (b"a", "must hold at least 2 characters"),
        (None, "does not exist"),
    ],
)
def test_read_corpus_refuses_what_it_cannot_use(tmp_path, content, pattern):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=pattern):
        data.read_corpus(path)


def test_char_vocab_round_trips_and_refuses_unknown_characters():
    vocab = data.CharVocab.from_text("hello world")
    assert vocab.chars == " dehlorw" and len(vocab) == 8
    assert vocab.decode(vocab.encode("low world")) == "low world"
    with pytest.raises(ValueError, match="outside the vocabulary: 'z'"):
        vocab.encode("low z")


def test_text_batch_targets_are_the_inputs_shifted_by_one(xp):
    vocab = data.CharVocab.from_text("abcdefghij")
    ids = vocab.encode("abcdefghij" * 3)
    x, targets = data.text_batch(ids, len(vocab), 4, 5, seed=0, xp=xp)
    x, targets = to_numpy(x), to_numpy(targets)
    assert x.shape == (5, 4, 10) and targets.shape == (5, 4)
    inputs = x.argmax(-1)
    assert np.array_equal(targets[:-1], inputs[1:])
    assert np.array_equal(targets, (inputs + 1) % 10)


def test_text_batch_refuses_windows_longer_than_the_text():
    with pytest.raises(ValueError, match="seq_len must be shorter than the text"):
        data.text_batch(np.arange(5), 5, 1, 5)


def test_real_word_fraction_counts_words_of_the_corpus():
    task = xrnn.TextTask("Beautiful is better than ugly.\n", seq_len=4, xp="numpy")
    assert task.real_word_fraction("ugly is better, than beautiful!") == pytest.approx(4 / 5)
    assert task.real_word_fraction("") == 0.0


def test_the_adding_task_evaluates_against_always_predicting_one(xp):
    task = xrnn.AddingTask(seq_len=5, eval_size=50, xp=xp, dtype="float64")

    class Constant:
        def forward(self, x):
            return xp.ones((x.shape[0], x.shape[1], 1), dtype=x.dtype), None, None

    result = task.evaluate(Constant())
    assert result.value == pytest.approx(result.baseline) and result.metric == "MSE"
    assert not result.higher_is_better


def test_held_out_data_differs_from_training_batches():
    task = xrnn.AddingTask(seq_len=5, batch_size=4, eval_size=4, xp="numpy")
    held_out, _ = data.adding_problem(4, 5, seed=task._held_out_rng(), xp="numpy")
    trained, _ = task.batch(np.random.default_rng(0))
    assert not np.array_equal(held_out, trained)
