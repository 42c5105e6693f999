"""`make demo`: the complete SMaT pipeline on the embedded offline default, in minutes on a laptop CPU.

Fashion-MNIST (Debian's ``dataset-fashion-mnist``; scikit-learn's digits when it is
absent) -> a small ViT teacher trained from scratch -> its teacher cache (predictions,
per-head attention scores, gradient L2, gradient x input and integrated-gradients
explanations) -> students trained with no explainer, each static explainer, and the
meta-learned SMaT attention explainer (co-trained, and frozen for a fresh student) ->
the simulability table, the learned head-coefficient heatmap and explanation overlays.
The config is ``experiments.smat.configs.get_config("images:demo")``; the run resumes if
killed and writes ``results/demo/``.
"""

from __future__ import annotations

import sys
import time

from experiments.smat import run


def main(argv=None):
    t0 = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    run.main(["images:demo", *argv])
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
