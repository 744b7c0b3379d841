"""g2pM's polyphone model (Park & Lee 2020, a BiLSTM trained on the CPP corpus), run in numpy."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np


class PolyphoneModel:
    """g2pM's BiLSTM (Park & Lee 2020, trained on CPP), run in numpy to give a distribution per character.

    Only the character's own candidate readings compete: the softmax is taken over them, not all classes.
    """

    _BOS, _EOS, _UNK = "시", "끝", "<UNK>"  # g2pM's sentence-boundary tokens

    def __init__(self, directory: Path) -> None:
        def load(name: str):
            with open(directory / name, "rb") as file:
                return pickle.load(file)  # noqa: S301 - the package's own files

        readings: dict[str, list[str]] = load("digest_cedict.pkl")
        class_ids: dict[str, int] = load("class2idx.pkl")
        self._char_ids: dict[str, int] = load("char2idx.pkl")
        self._candidates = {
            char: (tuple(r.replace("u:", "v") for r in options), np.array([class_ids[r] for r in options]))
            for char, options in readings.items()
            if len(options) > 1
        }
        self._load_weights(load("np_ckpt.pkl"))

    def _load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Arrange the LSTM so that both directions advance in one matrix product per step."""
        self._embedding = weights["embedding.weight"].astype(np.float32)
        hidden = weights["lstm.weight_hh_l0"].shape[1]
        self._hidden = hidden
        self._input_forward = weights["lstm.weight_ih_l0"].T.copy()
        self._input_backward = weights["lstm.weight_ih_l0_reverse"].T.copy()
        self._bias_forward = weights["lstm.bias_ih_l0"] + weights["lstm.bias_hh_l0"]
        self._bias_backward = weights["lstm.bias_ih_l0_reverse"] + weights["lstm.bias_hh_l0_reverse"]
        # Recurrent weights as one block-diagonal [2h, 8h] matrix; gate columns are regrouped so that the
        # product's layout is (i_f, i_b, f_f, f_b, g_f, g_b, o_f, o_b).
        recurrent = np.zeros((2 * hidden, 8 * hidden), dtype=np.float32)
        for gate in range(4):
            rows = slice(gate * hidden, (gate + 1) * hidden)
            recurrent[:hidden, (2 * gate) * hidden : (2 * gate + 1) * hidden] = weights["lstm.weight_hh_l0"][rows].T
            recurrent[hidden:, (2 * gate + 1) * hidden : (2 * gate + 2) * hidden] = weights[
                "lstm.weight_hh_l0_reverse"
            ][rows].T
        self._recurrent = recurrent
        self._hidden_layer = (weights["logit_layer.0.weight"].T.copy(), weights["logit_layer.0.bias"])
        self._output_layer = (weights["logit_layer.2.weight"], weights["logit_layer.2.bias"])

    def is_polyphonic(self, char: str) -> bool:
        """Whether the model has more than one reading to choose from for `char`."""
        return char in self._candidates

    def predict(self, sentence: str, positions: Sequence[int]) -> dict[int, dict[str, float]]:
        """Probability of each candidate reading of the characters at `positions` of `sentence`."""
        positions = [p for p in positions if sentence[p] in self._candidates]
        if not positions:
            return {}
        states = self._states(sentence)
        hidden_weight, hidden_bias = self._hidden_layer
        output_weight, output_bias = self._output_layer
        result = {}
        for position in positions:
            readings, classes = self._candidates[sentence[position]]
            features = np.maximum(states[position + 1] @ hidden_weight + hidden_bias, 0.0)
            logits = output_weight[classes] @ features + output_bias[classes]
            odds = np.exp(logits - logits.max())
            result[position] = dict(zip(readings, (odds / odds.sum()).tolist(), strict=True))
        return result

    def _states(self, sentence: str) -> np.ndarray:
        """[len+2, 2h] forward and backward hidden states over BOS + sentence + EOS."""
        ids = [self._char_ids[self._BOS]]
        ids += [self._char_ids.get(char, self._char_ids[self._UNK]) for char in sentence]
        ids.append(self._char_ids[self._EOS])
        embedded = self._embedding[ids]
        steps, h = len(ids), self._hidden
        forward_in = (embedded @ self._input_forward + self._bias_forward).reshape(steps, 4, 1, h)
        backward_in = (embedded[::-1] @ self._input_backward + self._bias_backward).reshape(steps, 4, 1, h)
        inputs = np.concatenate([forward_in, backward_in], axis=2).reshape(steps, 8 * h)
        state = np.zeros(2 * h, dtype=np.float32)
        cell = np.zeros(2 * h, dtype=np.float32)
        outputs = np.empty((steps, 2 * h), dtype=np.float32)
        for step in range(steps):
            gates = inputs[step] + state @ self._recurrent
            sigmoid = 0.5 * np.tanh(0.5 * gates) + 0.5
            cell = sigmoid[2 * h : 4 * h] * cell + sigmoid[: 2 * h] * np.tanh(gates[4 * h : 6 * h])
            state = sigmoid[6 * h :] * np.tanh(cell)
            outputs[step] = state
        forward, backward = outputs[:, :h], outputs[::-1, h:]
        return np.concatenate([forward, backward], axis=1)


@cache
def polyphone_model() -> PolyphoneModel:
    """The g2pM model, loaded once on first use."""
    import g2pM

    return PolyphoneModel(Path(g2pM.__file__).parent)
