"""Attention-as-explanation baselines: Jain & Wallace (2019) and Wiegreffe & Pinter (2019).

``baselines.models``: the BiLSTM + additive-attention classifier (single sequence and the
premise / hypothesis pair model), its frozen-uniform variant, and the pieces it is built
from (masked LSTM, bidirectional LSTM, additive attention) as pure functions.
``baselines.train``: the reference's training loop, every seed at once under ``jax.vmap``.
``baselines.adversary``: Jain & Wallace's per-instance adversary and permutation test, and
Wiegreffe & Pinter's model-consistent adversary.
``baselines.guided``: the diagnostic MLP guided by uniform, trained or imposed attention.
"""

from baselines.adversary import (
    WP_LAMBDA_GRIDS,
    WP_MIN_JSD,
    JWAdversaryConfig,
    adversary_data,
    adversary_summary,
    binary_tvd,
    consistent_adversary_loss,
    consistent_terms,
    select_adversary,
    jw_adversary,
    jw_objective,
    output_difference,
    permutation_test,
    within_mask_permutations,
)
from baselines.guided import GuidedMLPConfig, guide_data, guided_mlp
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
from baselines.train import TrainConfig, TrainResult, binary_metrics, encode_split, predict, train

__all__ = [
    "BiLSTMConfig", "LSTMState", "Model", "additive_attention", "additive_attention_init", "bilstm",
    "bilstm_classifier", "bilstm_init", "content_mask", "lstm_cell", "lstm_init", "lstm_layer",
    "reverse_index", "uniform_attention",
    "JWAdversaryConfig", "jw_adversary", "jw_objective", "output_difference", "permutation_test",
    "within_mask_permutations", "WP_LAMBDA_GRIDS", "WP_MIN_JSD", "adversary_data", "adversary_summary",
    "binary_tvd", "consistent_adversary_loss", "consistent_terms", "select_adversary",
    "GuidedMLPConfig", "guide_data", "guided_mlp",
    "TrainConfig", "TrainResult", "binary_metrics", "encode_split", "predict", "train",
]
