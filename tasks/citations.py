# ruff: noqa: E501  (BibTeX entries keep their author lists on one line)
"""BibTeX entries of the benchmarks and source datasets the tasks cite (bibliographic facts only)."""

from __future__ import annotations

BIBTEX = {
    "memalpha": """@article{wang2025memalpha,
  title   = {Mem-$\\alpha$: Learning Memory Construction via Reinforcement Learning},
  author  = {Wang, Yu and Takanobu, Ryuichi and Liang, Zhiqi and Mao, Yuzhen and Hu, Yuanzhe and McAuley, Julian and Wu, Xiaojian},
  journal = {arXiv preprint arXiv:2509.25911},
  year    = {2025}
}""",
    "memoryagentbench": """@inproceedings{hu2026memoryagentbench,
  title     = {Evaluating Memory in {LLM} Agents via Incremental Multi-Turn Interactions},
  author    = {Hu, Yuanzhe and Wang, Yu and McAuley, Julian},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2026},
  note      = {arXiv:2507.05257}
}""",
    "squad": """@inproceedings{rajpurkar2016squad,
  title     = {{SQuAD}: 100,000+ Questions for Machine Comprehension of Text},
  author    = {Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy},
  booktitle = {Proceedings of EMNLP},
  year      = {2016}
}""",
    "hotpotqa": """@inproceedings{yang2018hotpotqa,
  title     = {{HotpotQA}: A Dataset for Diverse, Explainable Multi-hop Question Answering},
  author    = {Yang, Zhilin and Qi, Peng and Zhang, Saizheng and Bengio, Yoshua and Cohen, William W. and Salakhutdinov, Ruslan and Manning, Christopher D.},
  booktitle = {Proceedings of EMNLP},
  year      = {2018}
}""",
    "perltqa": """@inproceedings{du2024perltqa,
  title     = {{PerLTQA}: A Personal Long-Term Memory Dataset for Memory Classification, Retrieval, and Fusion in Question Answering},
  author    = {Du, Yiming and Wang, Hongru and Zhao, Zhengyi and Liang, Bin and Wang, Baojun and Zhong, Wanjun and Wang, Zezhong and Wong, Kam-Fai},
  booktitle = {Proceedings of the 10th SIGHAN Workshop on Chinese Language Processing},
  year      = {2024},
  pages     = {152--164}
}""",
    "longmemeval": """@inproceedings{wu2025longmemeval,
  title     = {{LongMemEval}: Benchmarking Chat Assistants on Long-Term Interactive Memory},
  author    = {Wu, Di and Wang, Hongwei and Yu, Wenhao and Zhang, Yuwei and Chang, Kai-Wei and Yu, Dong},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025}
}""",
    "booksum": """@article{kryscinski2021booksum,
  title   = {{BookSum}: A Collection of Datasets for Long-form Narrative Summarization},
  author  = {Kry{\\'s}ci{\\'n}ski, Wojciech and Rajani, Nazneen and Agarwal, Divyansh and Xiong, Caiming and Radev, Dragomir},
  journal = {arXiv preprint arXiv:2105.08209},
  year    = {2021}
}""",
    "pubmed_rct": """@inproceedings{dernoncourt2017pubmed,
  title     = {{PubMed} 200k {RCT}: a Dataset for Sequential Sentence Classification in Medical Abstracts},
  author    = {Dernoncourt, Franck and Lee, Ji Young},
  booktitle = {Proceedings of IJCNLP},
  year      = {2017}
}""",
    "trec": """@inproceedings{li2002trec,
  title     = {Learning Question Classifiers},
  author    = {Li, Xin and Roth, Dan},
  booktitle = {Proceedings of COLING},
  year      = {2002}
}""",
    "banking77": """@inproceedings{casanueva2020banking77,
  title     = {Efficient Intent Detection with Dual Sentence Encoders},
  author    = {Casanueva, I{\\~n}igo and Tem{\\v{c}}inas, Tadas and Gerz, Daniela and Henderson, Matthew and Vuli{\\'c}, Ivan},
  booktitle = {Proceedings of the 2nd Workshop on NLP for Conversational AI},
  year      = {2020}
}""",
    "clinc150": """@inproceedings{larson2019clinc,
  title     = {An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction},
  author    = {Larson, Stefan and Mahendran, Anish and Peper, Joseph J. and Clarke, Christopher and Lee, Andrew and Hill, Parker and Kummerfeld, Jonathan K. and Leach, Kevin and Laurenzano, Michael A. and Tang, Lingjia and Mars, Jason},
  booktitle = {Proceedings of EMNLP-IJCNLP},
  year      = {2019}
}""",
    "nlu": """@inproceedings{liu2019nlu,
  title     = {Benchmarking Natural Language Understanding Services for Building Conversational Agents},
  author    = {Liu, Xingkun and Eshghi, Arash and Swietojanski, Pawel and Rieser, Verena},
  booktitle = {Proceedings of IWSDS},
  year      = {2019}
}""",
    "locomo": """@inproceedings{maharana2024locomo,
  title     = {Evaluating Very Long-Term Conversational Memory of {LLM} Agents},
  author    = {Maharana, Adyasha and Lee, Dong-Ho and Tulyakov, Sergey and Bansal, Mohit and Barbieri, Francesco and Fang, Yuwei},
  booktitle = {Proceedings of ACL},
  year      = {2024}
}""",
}


def bibtex(keys: tuple[str, ...]) -> str:
    """The entries of `keys`, in order, separated by blank lines."""
    missing = [k for k in keys if k not in BIBTEX]
    if missing:
        raise KeyError(f"no BibTeX entry for {missing}; add it to tasks/citations.py")
    return "\n\n".join(BIBTEX[k] for k in keys)
