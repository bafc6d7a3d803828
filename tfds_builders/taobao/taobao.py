"""Taobao: the EHCF paper's Taobao data (view, cart, purchase), EHCF file layout.

Features and metadata: see `tfds_builders._base`. Behaviors: view (if `pv.csv` or
`pv.csv.zip` is present), cart (if `cart.csv` is present), buy (target). Split: as shipped,
plus one random training purchase per user (seeded) held out for validation.
"""

from __future__ import annotations

from tfds_builders import _citations, _given_split


class Taobao(_given_split.EhcfLayoutBuilder):
    """Taobao in the EHCF file layout (see `EhcfLayoutBuilder` for the files)."""

    DESCRIPTION = (
        "Taobao (Chen et al., AAAI 2020 EHCF release): purchases with a given train/test "
        "split, add-to-cart and page views."
    )
    HOMEPAGE = "https://github.com/chenchongthu/EHCF"
    CITATION = _citations.EHCF
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the EHCF files of Taobao in the manual directory (--manual_dir):
      buy.train.txt, buy.test.txt (required; `uid<TAB>sid` header, then `user<TAB>item`),
      cart.csv (optional; `uid<TAB>sid<TAB>3` header, lines `user<TAB>item<TAB>cart`),
      pv.csv or pv.csv.zip (optional; views, same layout, the zip holding pv.csv).
    Public sources:
      https://raw.githubusercontent.com/chenchongthu/EHCF/master/data/Taobao/buy.train.txt
      https://raw.githubusercontent.com/chenchongthu/EHCF/master/data/Taobao/buy.test.txt
      https://raw.githubusercontent.com/chenchongthu/EHCF/master/data/Taobao/cart.csv
    """
