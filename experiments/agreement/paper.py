"""Published numbers of Neely et al. (2022), transcribed from the paper (Tables 3-9).

Michael Neely, Stefan F. Schouten, Maurits Bleeker and Ana Lucic, "A Song of
(Dis)agreement: Evaluating the Evaluation of Explainable Artificial Intelligence in
Natural Language Processing" (HHAI 2022; arXiv title "Order in the Court").  Transcribed
from the text at ``shared/papers/neely-2022-order-in-the-court-agreement.txt``.

- :data:`TAU`: mean +- standard deviation of the Kendall-tau between two explanation
  methods, Table 5 (DistilBERT, key ``"transformer"``) and Table 6 (BiLSTM, key
  ``"bilstm"``).  Tables 1 and 2 of the main text print the same means without the
  standard deviation; every one of their 150 means agrees with Tables 5 and 6 exactly.
  Per the paper (Sec. 4.4, footnote 8) the statistics pool 3 independently seeded model
  instances x 500 test instances drawn with the training seed; that the std is over the
  instance-level taus (not over the 3 seeds) is our reading, the paper does not say.
- :data:`FLOW_TAU`: Table 4, mean Kendall-tau of attention flow (DistilBERT) against each
  attribution method; no std, and no IMDb (attention flow was infeasible on its lengths).
- :data:`ACCURACY`: Table 3, test accuracy (fraction) with uniform vs softmax attention.
- :data:`VALID_ACCURACY`: Table 9, validation accuracy of the selected epoch, in PERCENT
  as printed (Table 3 is a fraction).
- :data:`TRAIN_MINUTES`: Table 7, training time in minutes (NVIDIA T4).
- :data:`SPLIT_SIZES`: Table 8, instances per split before length exclusions.

"attention" means Attention Rollout for the transformer (DistilBERT; Tables 1 and 5,
"Attn Roll" / "Attn") and the raw attention weights of the additive-attention BiLSTM
(Tables 2 and 6, "Attn Weights" / "Attn").  The other methods are the Captum LIME,
Integrated Gradients ("Int-Grad"), DeepLIFT, Grad-SHAP and Deep-SHAP.  Means and stds
are kept to the four decimals the paper prints; the diagonal (1 +- 0) is not stored.
"""

METHODS = ("attention", "lime", "integrated_gradients", "deeplift", "gradient_shap", "deep_shap")  # paper column order
TASKS = ("imdb", "sst", "mnli", "qqp", "snli")  # paper rows IMDb, SST-2, MNLI, Quora, SNLI
MODELS = ("transformer", "bilstm")  # DistilBERT (Table 5), BiLSTM (Table 6)

# TAU[model][task][(method_a, method_b)] = (mean, std), Tables 5 and 6.  Only the upper
# triangle (a before b in METHODS order), no diagonal: 15 pairs per model and task.
# Cross-check: all means equal those of Tables 1 (DistilBERT) and 2 (BiLSTM); no
# disagreement found.
TAU = {
    "transformer": {
        "imdb": {
            ("attention", "lime"): (0.1259, 0.1000),
            ("attention", "integrated_gradients"): (0.1818, 0.1256),
            ("attention", "deeplift"): (0.2516, 0.0752),
            ("attention", "gradient_shap"): (0.1432, 0.1296),
            ("attention", "deep_shap"): (0.2303, 0.0826),
            ("lime", "integrated_gradients"): (0.1050, 0.1069),
            ("lime", "deeplift"): (0.0696, 0.0791),
            ("lime", "gradient_shap"): (0.0929, 0.0983),
            ("lime", "deep_shap"): (0.0655, 0.0796),
            ("integrated_gradients", "deeplift"): (0.1433, 0.1443),
            ("integrated_gradients", "gradient_shap"): (0.5495, 0.2340),
            ("integrated_gradients", "deep_shap"): (0.1246, 0.1335),
            ("deeplift", "gradient_shap"): (0.1306, 0.1532),
            ("deeplift", "deep_shap"): (0.4830, 0.2469),
            ("gradient_shap", "deep_shap"): (0.1093, 0.1342),
        },
        "sst": {
            ("attention", "lime"): (0.1359, 0.1772),
            ("attention", "integrated_gradients"): (0.0511, 0.1680),
            ("attention", "deeplift"): (0.1328, 0.1764),
            ("attention", "gradient_shap"): (0.0737, 0.1629),
            ("attention", "deep_shap"): (0.1291, 0.1788),
            ("lime", "integrated_gradients"): (0.2861, 0.1658),
            ("lime", "deeplift"): (0.0618, 0.1702),
            ("lime", "gradient_shap"): (0.2414, 0.1715),
            ("lime", "deep_shap"): (0.0499, 0.1668),
            ("integrated_gradients", "deeplift"): (0.0498, 0.1897),
            ("integrated_gradients", "gradient_shap"): (0.4987, 0.2405),
            ("integrated_gradients", "deep_shap"): (0.0381, 0.1885),
            ("deeplift", "gradient_shap"): (0.0522, 0.2059),
            ("deeplift", "deep_shap"): (0.4514, 0.3031),
            ("gradient_shap", "deep_shap"): (0.0419, 0.1919),
        },
        "mnli": {
            ("attention", "lime"): (0.2678, 0.1196),
            ("attention", "integrated_gradients"): (0.1891, 0.1302),
            ("attention", "deeplift"): (0.2432, 0.1253),
            ("attention", "gradient_shap"): (0.1905, 0.1372),
            ("attention", "deep_shap"): (0.2067, 0.1609),
            ("lime", "integrated_gradients"): (0.1794, 0.1324),
            ("lime", "deeplift"): (0.1526, 0.1291),
            ("lime", "gradient_shap"): (0.1592, 0.1367),
            ("lime", "deep_shap"): (0.1205, 0.1493),
            ("integrated_gradients", "deeplift"): (0.2153, 0.1748),
            ("integrated_gradients", "gradient_shap"): (0.4780, 0.2441),
            ("integrated_gradients", "deep_shap"): (0.1708, 0.1732),
            ("deeplift", "gradient_shap"): (0.2324, 0.2078),
            ("deeplift", "deep_shap"): (0.4985, 0.2949),
            ("gradient_shap", "deep_shap"): (0.1752, 0.1902),
        },
        "qqp": {
            ("attention", "lime"): (0.1622, 0.1419),
            ("attention", "integrated_gradients"): (0.0574, 0.1640),
            ("attention", "deeplift"): (0.2267, 0.1374),
            ("attention", "gradient_shap"): (0.0518, 0.1652),
            ("attention", "deep_shap"): (0.2257, 0.1383),
            ("lime", "integrated_gradients"): (0.1407, 0.1632),
            ("lime", "deeplift"): (0.0032, 0.1555),
            ("lime", "gradient_shap"): (0.1144, 0.1597),
            ("lime", "deep_shap"): (0.0095, 0.1550),
            ("integrated_gradients", "deeplift"): (0.0625, 0.2088),
            ("integrated_gradients", "gradient_shap"): (0.4674, 0.2930),
            ("integrated_gradients", "deep_shap"): (0.0529, 0.1969),
            ("deeplift", "gradient_shap"): (0.0637, 0.2272),
            ("deeplift", "deep_shap"): (0.5951, 0.3210),
            ("gradient_shap", "deep_shap"): (0.0535, 0.2131),
        },
        "snli": {
            ("attention", "lime"): (0.1434, 0.1649),
            ("attention", "integrated_gradients"): (0.1645, 0.1798),
            ("attention", "deeplift"): (0.2214, 0.1431),
            ("attention", "gradient_shap"): (0.1600, 0.1720),
            ("attention", "deep_shap"): (0.1796, 0.2004),
            ("lime", "integrated_gradients"): (0.1529, 0.1588),
            ("lime", "deeplift"): (0.0925, 0.1645),
            ("lime", "gradient_shap"): (0.1104, 0.1596),
            ("lime", "deep_shap"): (0.0593, 0.1710),
            ("integrated_gradients", "deeplift"): (0.0955, 0.1801),
            ("integrated_gradients", "gradient_shap"): (0.3932, 0.2588),
            ("integrated_gradients", "deep_shap"): (0.0700, 0.1829),
            ("deeplift", "gradient_shap"): (0.1181, 0.2120),
            ("deeplift", "deep_shap"): (0.5554, 0.3576),
            ("gradient_shap", "deep_shap"): (0.0851, 0.2108),
        },
    },
    "bilstm": {
        "imdb": {
            ("attention", "lime"): (0.2014, 0.0790),
            ("attention", "integrated_gradients"): (0.2188, 0.0815),
            ("attention", "deeplift"): (0.2494, 0.1028),
            ("attention", "gradient_shap"): (0.2209, 0.0834),
            ("attention", "deep_shap"): (0.2309, 0.1219),
            ("lime", "integrated_gradients"): (0.6538, 0.1557),
            ("lime", "deeplift"): (0.5854, 0.1495),
            ("lime", "gradient_shap"): (0.6486, 0.1544),
            ("lime", "deep_shap"): (0.5584, 0.1609),
            ("integrated_gradients", "deeplift"): (0.7331, 0.1155),
            ("integrated_gradients", "gradient_shap"): (0.9409, 0.0504),
            ("integrated_gradients", "deep_shap"): (0.6994, 0.1342),
            ("deeplift", "gradient_shap"): (0.7378, 0.1192),
            ("deeplift", "deep_shap"): (0.8593, 0.1453),
            ("gradient_shap", "deep_shap"): (0.7021, 0.1366),
        },
        "sst": {
            ("attention", "lime"): (0.1326, 0.2372),
            ("attention", "integrated_gradients"): (0.1093, 0.2554),
            ("attention", "deeplift"): (0.1372, 0.2575),
            ("attention", "gradient_shap"): (0.1101, 0.2534),
            ("attention", "deep_shap"): (0.1400, 0.2672),
            ("lime", "integrated_gradients"): (0.4968, 0.2739),
            ("lime", "deeplift"): (0.4734, 0.2669),
            ("lime", "gradient_shap"): (0.4962, 0.2751),
            ("lime", "deep_shap"): (0.4422, 0.2704),
            ("integrated_gradients", "deeplift"): (0.8683, 0.1032),
            ("integrated_gradients", "gradient_shap"): (0.9707, 0.0382),
            ("integrated_gradients", "deep_shap"): (0.8063, 0.1561),
            ("deeplift", "gradient_shap"): (0.8682, 0.1068),
            ("deeplift", "deep_shap"): (0.8729, 0.1442),
            ("gradient_shap", "deep_shap"): (0.8056, 0.1566),
        },
        "mnli": {
            ("attention", "lime"): (0.1958, 0.1496),
            ("attention", "integrated_gradients"): (0.2523, 0.1654),
            ("attention", "deeplift"): (0.2549, 0.1570),
            ("attention", "gradient_shap"): (0.2473, 0.1651),
            ("attention", "deep_shap"): (0.2370, 0.1550),
            ("lime", "integrated_gradients"): (0.3281, 0.1417),
            ("lime", "deeplift"): (0.2444, 0.1452),
            ("lime", "gradient_shap"): (0.3187, 0.1398),
            ("lime", "deep_shap"): (0.2269, 0.1495),
            ("integrated_gradients", "deeplift"): (0.4984, 0.1561),
            ("integrated_gradients", "gradient_shap"): (0.8138, 0.1219),
            ("integrated_gradients", "deep_shap"): (0.4021, 0.1690),
            ("deeplift", "gradient_shap"): (0.4987, 0.1732),
            ("deeplift", "deep_shap"): (0.6208, 0.2175),
            ("gradient_shap", "deep_shap"): (0.4015, 0.1757),
        },
        "qqp": {
            ("attention", "lime"): (0.0363, 0.2243),
            ("attention", "integrated_gradients"): (0.0143, 0.2019),
            ("attention", "deeplift"): (0.0894, 0.2084),
            ("attention", "gradient_shap"): (0.0182, 0.2060),
            ("attention", "deep_shap"): (0.1017, 0.2311),
            ("lime", "integrated_gradients"): (0.2099, 0.1943),
            ("lime", "deeplift"): (0.1900, 0.1887),
            ("lime", "gradient_shap"): (0.2037, 0.1939),
            ("lime", "deep_shap"): (0.1670, 0.2036),
            ("integrated_gradients", "deeplift"): (0.2906, 0.2374),
            ("integrated_gradients", "gradient_shap"): (0.7420, 0.2089),
            ("integrated_gradients", "deep_shap"): (0.2290, 0.2343),
            ("deeplift", "gradient_shap"): (0.3158, 0.2473),
            ("deeplift", "deep_shap"): (0.6179, 0.3241),
            ("gradient_shap", "deep_shap"): (0.2433, 0.2417),
        },
        "snli": {
            ("attention", "lime"): (0.2198, 0.1761),
            ("attention", "integrated_gradients"): (0.2566, 0.1748),
            ("attention", "deeplift"): (0.3158, 0.1555),
            ("attention", "gradient_shap"): (0.2517, 0.1782),
            ("attention", "deep_shap"): (0.2938, 0.1556),
            ("lime", "integrated_gradients"): (0.2673, 0.1650),
            ("lime", "deeplift"): (0.1676, 0.1640),
            ("lime", "gradient_shap"): (0.2481, 0.1688),
            ("lime", "deep_shap"): (0.1566, 0.1682),
            ("integrated_gradients", "deeplift"): (0.2461, 0.1738),
            ("integrated_gradients", "gradient_shap"): (0.6535, 0.1848),
            ("integrated_gradients", "deep_shap"): (0.2165, 0.1800),
            ("deeplift", "gradient_shap"): (0.2557, 0.1937),
            ("deeplift", "deep_shap"): (0.5791, 0.2748),
            ("gradient_shap", "deep_shap"): (0.2219, 0.1927),
        },
    },
}

# Table 4: FLOW_TAU[task][method] = mean Kendall-tau of attention flow (DistilBERT) vs the
# method.  No std is published and IMDb is absent.  Note: the Quora row is printed as is;
# its pattern (high with Int-Grad and Deep-SHAP, low with DeepLIFT) differs from the
# other three rows (high with DeepLIFT and Deep-SHAP), which may be a typesetting slip
# in the paper, not in this transcription.
FLOW_TAU = {
    "mnli": {"lime": 0.1326, "integrated_gradients": 0.1251, "deeplift": 0.2159,
             "gradient_shap": 0.1227, "deep_shap": 0.2148},
    "qqp": {"lime": 0.0853, "integrated_gradients": 0.2426, "deeplift": 0.0367,
            "gradient_shap": 0.0241, "deep_shap": 0.2319},
    "snli": {"lime": 0.0844, "integrated_gradients": 0.0753, "deeplift": 0.2178,
             "gradient_shap": 0.0571, "deep_shap": 0.2149},
    "sst": {"lime": 0.1795, "integrated_gradients": 0.0689, "deeplift": 0.1286,
            "gradient_shap": 0.0811, "deep_shap": 0.1202},
}

# Table 3: ACCURACY[model][task][activation] = (mean, std) test accuracy as a fraction,
# "uniform" (attention replaced by uniform weights) or "softmax" (the trained model).
ACCURACY = {
    "bilstm": {
        "mnli": {"uniform": (0.659, 0.001), "softmax": (0.667, 0.004)},
        "qqp": {"uniform": (0.829, 0.001), "softmax": (0.830, 0.001)},
        "snli": {"uniform": (0.804, 0.004), "softmax": (0.807, 0.002)},
        "imdb": {"uniform": (0.874, 0.011), "softmax": (0.872, 0.014)},
        "sst": {"uniform": (0.823, 0.008), "softmax": (0.826, 0.011)},
    },
    "transformer": {
        "mnli": {"uniform": (0.599, 0.002), "softmax": (0.779, 0.002)},
        "qqp": {"uniform": (0.832, 0.001), "softmax": (0.888, 0.001)},
        "snli": {"uniform": (0.770, 0.005), "softmax": (0.871, 0.001)},
        "imdb": {"uniform": (0.879, 0.003), "softmax": (0.890, 0.005)},
        "sst": {"uniform": (0.823, 0.004), "softmax": (0.842, 0.003)},
    },
}

# Table 9: VALID_ACCURACY[model][task] = (mean, std) validation accuracy of the selected
# epoch across three seeds, in PERCENT as printed.
VALID_ACCURACY = {
    "bilstm": {
        "mnli": (67.088, 0.190),
        "qqp": (83.232, 0.139),
        "snli": (81.535, 0.041),
        "imdb": (87.975, 1.375),
        "sst": (80.696, 0.403),
    },
    "transformer": {
        "mnli": (77.338, 0.251),
        "qqp": (88.801, 0.055),
        "snli": (87.679, 0.075),
        "imdb": (88.587, 0.489),
        "sst": (83.066, 0.692),
    },
}

# Table 7: TRAIN_MINUTES[model][task] = (mean, std) minutes to train one model, across
# three seeds, on an AWS g4dn.xlarge (NVIDIA T4).
TRAIN_MINUTES = {
    "bilstm": {
        "mnli": (8.65, 0.635),
        "qqp": (7.567, 1.404),
        "snli": (31.495, 5.618),
        "imdb": (1.122, 0.107),
        "sst": (0.216, 0.029),
    },
    "transformer": {
        "mnli": (296.228, 48.859),
        "qqp": (380.056, 124.911),
        "snli": (126.395, 22.909),
        "imdb": (24.2, 1.212),
        "sst": (2.833, 0.65),
    },
}

# Table 8: SPLIT_SIZES[task] = instances per split before the length exclusions.  MNLI's
# "test" is the English subset of XNLI (MultiNLI has no public test set).
SPLIT_SIZES = {
    "mnli": {"train": 392702, "validation": 10000, "test": 5000},
    "qqp": {"train": 323426, "validation": 40429, "test": 40431},
    "snli": {"train": 550152, "validation": 10000, "test": 10000},
    "imdb": {"train": 17212, "validation": 4304, "test": 4363},
    "sst": {"train": 8544, "validation": 1101, "test": 2210},
}


def tau(model, task, a, b):
    """Published ``(mean, std)`` Kendall-tau of methods ``a`` and ``b`` in either order.

    ``None`` for an unknown model, task or method, and for ``a == b`` (the diagonal,
    printed as 1 +- 0, is not stored).
    """
    pairs = TAU.get(model, {}).get(task, {})
    return pairs.get((a, b), pairs.get((b, a)))
