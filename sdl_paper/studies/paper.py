"""The paper's numbers, each with the place it comes from (Tang et al., arXiv:2512.05534, v5/v6; our reading in
``shared/PAPER.md``, section 4). Chapters and verdict rules read them from here, never from their own copies.

Entries of the bench's tables are (M_GT, M_IP) on encoder rows, without anchoring and with it:
``(M_GT, M_IP, M_GT anchored, M_IP anchored)``, fractions (the paper prints M_GT in percent).
"""
from __future__ import annotations

# The cosine threshold of M_GT (Table 1's caption; the notation table says "typically 0.9 or 0.95")
TAU = 0.95

# Table 1: the Linear Representation Bench at n = 1000, n_p = n_r = 768, n_q = 16,000, S = 0.99, M = 0.1
TABLE1 = {
    "ReLU SAE": (0.0, 0.205, 0.0, 0.246),
    "JumpReLU SAE": (0.0, 0.237, 0.0, 0.333),
    "TopK SAE": (0.849, 0.983, 0.8763, 0.986),
    "BatchTopK SAE": (0.848, 0.981, 0.8938, 0.988),
    "Matryoshka SAE": (0.837, 0.982, 0.8732, 0.985),
    "TopK transcoder": (0.236, 0.838, 0.2505, 0.838),
    "TopK crosscoder": (0.5642, 0.940, 0.5771, 0.941),
}

# Table 2: CLIP-ViT-B/32 on ImageNet-1K, class means as ground truth, 30 anchored classes, lambda_anchor = 1.0
TABLE2 = {
    "TopK SAE": (0.0, 0.517, 0.2413, 0.851),
    "BatchTopK SAE": (0.0, 0.508, 0.2413, 0.847),
    "Matryoshka SAE": (0.0, 0.683, 0.2445, 0.858),
}

# Table 4 (Appendix G): superposition ratio, ReLU SAE, n_q = 16,000, 100 anchors, lambda_anchor = 0.1; by n.
# PAPER.md: it cannot be read with the stated metrics (M_GT = 100% forces M_IP >= 0.95).
TABLE4_RELU = {800: (0.0, 0.361, 1.0, 0.436), 900: (0.0, 0.298, 0.9889, 0.345), 1000: (0.0, 0.254, 0.855, 0.292),
               1100: (0.0, 0.223, 0.5809, 0.258), 1200: (0.0, 0.203, 0.3058, 0.233),
               1300: (0.0, 0.192, 0.1523, 0.216), 1400: (0.0, 0.181, 0.0857, 0.207)}

# Table 5: maximum interference M (M = 0.1 is Table 1)
TABLE5 = {
    0.05: {"ReLU SAE": (0.0, 0.205, 0.0, 0.246), "JumpReLU SAE": (0.0, 0.239, 0.0, 0.326),
           "TopK SAE": (0.843, 0.982, 0.873, 0.985), "BatchTopK SAE": (0.861, 0.984, 0.875, 0.986),
           "Matryoshka SAE": (0.838, 0.982, 0.858, 0.985)},
    0.2: {"ReLU SAE": (0.0, 0.204, 0.0, 0.245), "JumpReLU SAE": (0.0, 0.237, 0.0, 0.333),
          "TopK SAE": (0.852, 0.984, 0.868, 0.986), "BatchTopK SAE": (0.847, 0.981, 0.907, 0.989),
          "Matryoshka SAE": (0.847, 0.983, 0.876, 0.986)},
    0.5: {"ReLU SAE": (0.0, 0.203, 0.0, 0.243), "JumpReLU SAE": (0.0, 0.237, 0.0, 0.325),
          "TopK SAE": (0.842, 0.982, 0.882, 0.987), "BatchTopK SAE": (0.837, 0.981, 0.896, 0.987),
          "Matryoshka SAE": (0.839, 0.982, 0.864, 0.985)},
}

# Table 6: activation probability 1 - S (the paper labels it S; its 0.01 rows repeat Table 1)
TABLE6 = {
    0.005: {"ReLU SAE": (0.0, 0.231, 0.0, 0.326), "JumpReLU SAE": (0.118, 0.890, 0.748, 0.970),
            "TopK SAE": (0.822, 0.978, 0.843, 0.981), "BatchTopK SAE": (0.805, 0.976, 0.832, 0.980),
            "Matryoshka SAE": (0.793, 0.974, 0.861, 0.983)},
    0.1: {"ReLU SAE": (0.0, 0.186, 0.0, 0.191), "JumpReLU SAE": (0.0, 0.191, 0.0, 0.193),
          "TopK SAE": (0.988, 0.981, 0.984, 0.979), "BatchTopK SAE": (0.956, 0.975, 0.962, 0.976),
          "Matryoshka SAE": (0.997, 0.991, 0.997, 0.991)},
}

# Table 7: TopK SAE over its k (n = 1000, n_q = 16,000, 100 anchors)
TABLE7_TOPK = {32: (1.0, 0.999, 1.0, 0.999), 64: (0.939, 0.992, 0.934, 0.991), 128: (0.867, 0.986, 0.880, 0.987)}

# Table 6's rows at 1 - S = 0.01 are printed as "as Table 1" (PAPER.md): Table 1's five SAE rows
TABLE6_AT_001 = {r: TABLE1[r] for r in ("ReLU SAE", "JumpReLU SAE", "TopK SAE", "BatchTopK SAE", "Matryoshka SAE")}

# What the ablation verdicts compare with: TopK M_GT per k (Table 7), the values of M and 1 - S the paper ran
# (Tables 5, 6; M = 0.1 and 1 - S = 0.01 are Table 1's), and the TopK family's M_GT range at 1 - S = 0.1 without
# anchoring (Table 6: BatchTopK 95.6% to Matryoshka 99.7%)
_FAMILY_AT_01 = [TABLE6[0.1][r][0] for r in ("TopK SAE", "BatchTopK SAE", "Matryoshka SAE")]
ABLATIONS = {"k": {k: v[0] for k, v in TABLE7_TOPK.items()}, "M": (0.05, 0.2, 0.5), "1 - S": (0.005, 0.01, 0.1),
             "1 - S at 0.1": (min(_FAMILY_AT_01), max(_FAMILY_AT_01))}

# Fig. 7 (neuron resampling on Llama-3.1-8B, layer 12): loss read off the figure at fractions of training
FIG7_READ_OFF = {"fraction of training": (0, 1, 0, 1 / 6, 1), "loss": (5.0, 1.7, 5.0, 3.4, 1.3),
                 "remedy": ("none", "none", "resample", "resample", "resample")}
