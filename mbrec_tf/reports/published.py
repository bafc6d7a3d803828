"""Figures the two papers publish, to print beside measured ones.

Sources (the text under ../shared/papers):
- EHCF: Chen et al., "Efficient Heterogeneous Collaborative Filtering without Negative
  Sampling for Recommendation", AAAI 2020. Table 2 (full ranking, all items) and Table 4
  (runtime on one GTX TITAN X GPU). Its Beibei has view, cart and buy; the public copy this
  project reads has cart and buy only, so the rows are a reference, not a like-for-like match.
  Its "NCF" is NeuMF. EHCF's own HR@10 and NDCG@10 on Beibei are the authors' correction
  (0.1551 / 0.0831, recorded with the data in ../shared/data/beibei/README.md), not the
  superseded 0.0608 / 0.0325 of the printed table.
- Multi-feedback MF+MLP paper (the `mbncf` model), Table 4: leave-one-out with 99 sampled
  negatives on a Taobao UserBehavior sample of 19,576 users and 629,758 items with four
  behaviors; `taobao_ub4` is another sample of the same log (12,770 users, 62,891 items).
"""

from __future__ import annotations

#: Where each dataset's published rows come from, shown under the tables.
SOURCES: dict[str, str] = {
    "beibei": (
        "EHCF paper (AAAI 2020), Table 2, Beibei with view, cart and buy (the public copy "
        "used here has cart and buy only); EHCF's HR@10 and NDCG@10 are the authors' "
        "correction (0.1551 / 0.0831)"
    ),
    "taobao_ub4": (
        "multi-feedback MF+MLP paper, Table 4, another sample of Taobao UserBehavior "
        "(19,576 users, 629,758 items); mean of 10 runs"
    ),
}

_EHCF_COLUMNS = ("hr@10", "hr@50", "hr@100", "hr@200", "ndcg@10", "ndcg@50", "ndcg@100", "ndcg@200")
_EHCF_BEIBEI = {
    "bpr": (0.0437, 0.1246, 0.2192, 0.3057, 0.0213, 0.0407, 0.0539, 0.0689),
    "expomf": (0.0452, 0.1465, 0.2246, 0.3282, 0.0227, 0.0426, 0.0553, 0.0723),
    "neumf": (0.0441, 0.1562, 0.2343, 0.3583, 0.0225, 0.0445, 0.0584, 0.0757),
    "ehcf_sin": (0.0464, 0.1637, 0.2586, 0.3743, 0.0247, 0.0484, 0.0639, 0.0799),
    "cmf": (0.0482, 0.1582, 0.2843, 0.4288, 0.0251, 0.0462, 0.0661, 0.0852),
    "mc_bpr": (0.0504, 0.1743, 0.2755, 0.3862, 0.0254, 0.0503, 0.0653, 0.0796),
    "nmtr": (0.0524, 0.2047, 0.3189, 0.4735, 0.0285, 0.0609, 0.0764, 0.0968),
    # HR@10 and NDCG@10 as corrected by the authors (the paper prints 0.0608 / 0.0325); see
    # ../shared/data/beibei/README.md. The other columns are the paper's.
    "ehcf": (0.1551, 0.3316, 0.4312, 0.5460, 0.0831, 0.1213, 0.1374, 0.1535),
}

#: dataset -> model -> metric -> published value (full-ranking keys and "sampled/..." keys).
METRICS: dict[str, dict[str, dict[str, float]]] = {
    "beibei": {m: dict(zip(_EHCF_COLUMNS, v, strict=True)) for m, v in _EHCF_BEIBEI.items()},
    "taobao_ub4": {
        "mfpr": {"sampled/hr@10": 0.2426, "sampled/ndcg@10": 0.1568},
        "bpr": {"sampled/hr@10": 0.2296, "sampled/ndcg@10": 0.1505},
        "wmf": {"sampled/hr@10": 0.2315, "sampled/ndcg@10": 0.1485},
        "neumf": {"sampled/hr@10": 0.2500, "sampled/ndcg@10": 0.1670},
        "mbncf": {"sampled/hr@10": 0.2795, "sampled/ndcg@10": 0.1673},
    },
}

#: EHCF paper Table 4, Beibei: seconds per epoch, epochs to converge, total minutes (GPU).
RUNTIME: dict[str, dict[str, dict[str, float]]] = {
    "beibei": {
        "neumf": {"epoch_seconds": 62, "epochs": 100, "total_minutes": 104},
        "ehcf_sin": {"epoch_seconds": 3.2, "epochs": 100, "total_minutes": 6},
        "nmtr": {"epoch_seconds": 165, "epochs": 200, "total_minutes": 550},
        "ehcf": {"epoch_seconds": 7, "epochs": 200, "total_minutes": 24},
    }
}
RUNTIME_SOURCE = "EHCF paper, Table 4 (one NVIDIA GTX TITAN X GPU)"
