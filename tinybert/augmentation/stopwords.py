"""The stop words augmentation never replaces: NLTK's English list, and a Chinese one
(:mod:`tinybert.augmentation.stopwords_zh`), both shipped as constants (docs/math.md#data-augmentation).

Data augmentation never replaces a stop word. The list is NLTK's ``stopwords`` corpus for
English (the 179 words of ``nltk.corpus.stopwords.words("english")``, the same list the
paper's code hard-codes), copied here so that nothing is downloaded at run time. Entries
with an apostrophe can never match: BERT's basic tokenizer splits "don't" into
``don ' t``, and ``don`` and ``t`` are in the list themselves.
"""
from __future__ import annotations

from .stopwords_zh import CHINESE_STOP_WORDS

ENGLISH_STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them
    their theirs themselves what which who whom this that that'll these those am is are was
    were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don don't should should've now d ll m o re ve y
    ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven
    haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
    """.split()
)


def is_stop_word(word: str) -> bool:
    """True for an English stop word in any letter case ("The" as much as "the") or a Chinese one.

    One rule for both languages: a text may mix them, and the two lists share no entry.
    """
    word = word.lower()
    return word in ENGLISH_STOP_WORDS or word in CHINESE_STOP_WORDS
