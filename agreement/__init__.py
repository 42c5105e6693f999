"""Explanation agreement (Neely et al. 2022, "Order in the Court" / "A Song of (Dis)agreement").

- :mod:`agreement.attributions`: LIME, integrated gradients, DeepLIFT, Grad-SHAP,
  Deep-SHAP, gradient x input and leave-one-out as batched, jittable functions of any
  model's input embeddings.
- :mod:`agreement.attention`: attention rollout (JAX) and attention flow (scipy max-flow).
- :mod:`agreement.metrics`: Kendall tau-b, Spearman, Pearson (scipy-exact, batched,
  masked) and the top-k agreements of Krishna et al. 2022.
"""

from agreement import attention, attributions, metrics

__all__ = ["attention", "attributions", "metrics"]
