"""BibTeX entries of the papers and releases the builders' data come from."""

EHCF = """@inproceedings{chen2020efficient,
  title={Efficient Heterogeneous Collaborative Filtering without Negative Sampling for
         Recommendation},
  author={Chen, Chong and Zhang, Min and Ma, Weizhi and Zhang, Yongfeng and Liu, Yiqun and
          Ma, Shaoping},
  booktitle={AAAI}, year={2020}}"""

NMTR = """@inproceedings{gao2019neural,
  title={Neural Multi-Task Recommendation from Multi-Behavior Data},
  author={Gao, Chen and He, Xiangnan and Gan, Dahua and Chen, Xiangning and Feng, Fuli and
          Li, Yong and Chua, Tat-Seng and Jin, Depeng},
  booktitle={ICDE}, year={2019}}"""

USER_BEHAVIOR = """@inproceedings{zhu2018learning,
  title={Learning Tree-based Deep Model for Recommender Systems},
  author={Zhu, Han and Li, Xiang and Zhang, Pengye and Li, Guozheng and He, Jie and Li, Han
          and Gai, Kun},
  booktitle={KDD}, year={2018}}"""

RETAILROCKET = """@misc{retailrocket2016,
  title={Retailrocket recommender system dataset},
  author={{Retailrocket}},
  howpublished={\\url{https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset}},
  year={2016}}"""

MOVIELENS = """@article{harper2015movielens,
  title={The MovieLens Datasets: History and Context},
  author={Harper, F. Maxwell and Konstan, Joseph A.},
  journal={ACM Transactions on Interactive Intelligent Systems}, year={2015}}"""
