"""Attention-as-explanation baselines: Jain & Wallace (2019) and Wiegreffe & Pinter (2019).

``baselines.models``: the BiLSTM + additive-attention classifier (single sequence and the
premise / hypothesis pair model), its frozen-uniform variant, and the pieces it is built
from (masked LSTM, bidirectional LSTM, additive attention) as pure functions.
"""

from baselines.models import (
    BiLSTMConfig,
    LSTMState,
    Model,
    additive_attention,
    additive_attention_init,
    bilstm,
    bilstm_classifier,
    bilstm_init,
    content_mask,
    lstm_cell,
    lstm_init,
    lstm_layer,
    reverse_index,
    uniform_attention,
)

__all__ = [
    "BiLSTMConfig", "LSTMState", "Model", "additive_attention", "additive_attention_init", "bilstm",
    "bilstm_classifier", "bilstm_init", "content_mask", "lstm_cell", "lstm_init", "lstm_layer",
    "reverse_index", "uniform_attention",
]
