"""CJK text in augmentation: which characters are CJK, segmented words, and spacing (docs/math.md#chinese-text).

BERT's basic tokenizer puts every CJK ideograph in a word of its own, so unsegmented Chinese
reaches augmentation as single characters, which a Chinese masked LM (``bert-base-chinese``,
whose vocabulary holds single characters) predicts directly. A text the user has segmented
(words separated by spaces, ``--segmented``) is split with the CJK splitting turned off, so a
multi-character word stays one word; the masked LM still reads it character by character
(:func:`cjk_pieces`), as it was trained to.

Joining the words of a variant with spaces, as the paper's code does, would turn 这部电影很好看
into 这 部 电 影 很 好 看. The model reads both alike, but the written file should look like the
task's own text, so :func:`separators` remembers where the original had no whitespace around
CJK text and :func:`join_words` leaves it out there again. Text without CJK characters is
joined with spaces exactly as before.
"""
from __future__ import annotations

import re
from typing import Callable, List, Optional, Sequence, Tuple

# The code points BERT's basic tokenizer splits apart (its _is_chinese_char): the CJK Unified
# Ideographs, extensions A-E and the compatibility ideographs. Kana and Hangul are not in it.
_CJK_RANGES = ("\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
               "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f")
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_CJK_WORD = re.compile(f"[{_CJK_RANGES}]+")
_CJK_OR_NOT = re.compile(f"[{_CJK_RANGES}]|[^{_CJK_RANGES}]+")

Separators = Optional[Tuple[str, ...]]  # between consecutive words; None: a space everywhere


def has_cjk(text: str) -> bool:
    return _CJK_CHAR.search(text) is not None


def is_cjk_word(word: str) -> bool:
    """Every character a CJK ideograph (一, 电影): the words whose replacements must be CJK too."""
    return _CJK_WORD.fullmatch(word) is not None


def cjk_pieces(word: str) -> List[str]:
    """``word`` with each CJK ideograph on its own, the way the model's tokenizer cuts it before
    WordPiece (电影 -> 电 影, 看ok -> 看 ok); a word without CJK is returned whole."""
    if not has_cjk(word):
        return [word]
    return _CJK_OR_NOT.findall(word)


def separators(text: str, words: Sequence[str], tokenize: Callable[[str], List[str]]) -> Separators:
    """Where ``words`` (``tokenize(text)``) had no whitespace between them in ``text``.

    Each whitespace-separated chunk of the text is tokenized on its own; inside a chunk that
    holds a CJK ideograph the words are glued back together, every other boundary gets a space
    (English keeps its ``wasn ' t``). None, i.e. spaces everywhere, for text without CJK and in
    the rare case where the chunks do not tokenize to the same words as the whole text.
    """
    if not has_cjk(text):
        return None
    found: List[str] = []
    between: List[str] = []
    for chunk in text.split():
        part = tokenize(chunk)
        if not part:
            continue
        if found:
            between.append(" ")
        between += ["" if has_cjk(chunk) else " "] * (len(part) - 1)
        found += part
    return tuple(between) if found == list(words) else None


def join_words(words: Sequence[str], between: Separators) -> str:
    """A variant's text: its words with the original's separators (spaces if None)."""
    if between is None:
        return " ".join(words)
    return "".join(word + gap for word, gap in zip(words, between)) + (words[-1] if words else "")
