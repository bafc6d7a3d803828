"""Beibei: the e-commerce dataset of the EHCF paper (cart and purchase; view when given).

Features and metadata: see `tfds_builders._base`. Behaviors: view (only if `pv.csv` is
present), cart, buy (target). Split: as shipped (`buy.test.txt` is the test split), plus one
random training purchase per user (seeded) held out for validation.
"""

from __future__ import annotations

from tfds_builders import _citations, _given_split


class Beibei(_given_split.EhcfLayoutBuilder):
    """Beibei in the EHCF file layout (see `EhcfLayoutBuilder` for the files)."""

    DESCRIPTION = (
        "Beibei (Chen et al., AAAI 2020 EHCF release; Gao et al., ICDE 2019): purchases with "
        "a given train/test split, add-to-cart, and views where available."
    )
    HOMEPAGE = "https://github.com/chenchongthu/EHCF"
    CITATION = _citations.EHCF + "\n" + _citations.NMTR
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the EHCF files of Beibei in the manual directory (--manual_dir):
      buy.train.txt, buy.test.txt (required; `uid<TAB>sid` header, then `user<TAB>item`),
      cart.csv (optional; `uid<TAB>sid<TAB>3` header, lines `user<TAB>item<TAB>cart`),
      pv.csv or pv.csv.zip (optional; views, same layout).
    Public sources:
      https://raw.githubusercontent.com/chenchongthu/EHCF/master/data/Beibei/buy.train.txt
      https://raw.githubusercontent.com/chenchongthu/EHCF/master/data/Beibei/buy.test.txt
      cart pairs: https://github.com/chenchongthu/GHCF (Data/Beibei/cart.txt, GHCF layout;
      write them as cart.csv). The view file of the paper is not publicly fetchable.
    """
