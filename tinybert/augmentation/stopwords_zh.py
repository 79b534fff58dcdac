"""A Chinese stop-word list, shipped as a constant beside the English one (docs/math.md#data-augmentation).

Data augmentation never replaces a stop word: function words carry the grammar of a sentence,
and replacing one (的 by 地, 不 by 很) gives broken or label-changing text rather than a
paraphrase. The idea and the kinds of entries follow the Chinese stop-word lists in common use
(HIT's 哈工大停用词表, Baidu's list, the one of Sichuan University's machine intelligence lab),
which, like NLTK's English list, are made of particles, pronouns, prepositions, conjunctions,
auxiliaries, degree adverbs, negations and interjections. The entries below are written here by
hand, not copied from those files, and kept short: words of content (nouns, verbs, adjectives)
must stay candidates.

Unsegmented text reaches the candidate rule as single characters (BERT's basic tokenizer puts
every CJK character in its own word), so the single-character function words are the entries
that matter most; the multi-character ones (我们, 没有, 因为) match only segmented text
(``--segmented``). Negations (不, 没, 没有, 别) are here for the reason "not" and "no" are in
NLTK's list: replacing them would flip a sentiment label.
"""
from __future__ import annotations

CHINESE_STOP_WORDS = frozenset(
    """
    的 地 得 之 了 着 过 吗 呢 吧 啊 呀 哦 嘛 么 啦 哈 呗 咯 哇 嗯 哎 唉 呃 喔 噢 呵 嘿 哟
    我 你 您 他 她 它 我们 你们 他们 她们 它们 咱 咱们 大家 自己 人家 别人
    这 那 这个 那个 这些 那些 这里 那里 这儿 那儿 这样 那样 这么 那么 这种 那种 此 其 其中 其他 其它
    什么 哪 哪里 哪儿 哪个 谁 怎么 怎样 怎么样 为什么 多少 几
    是 有 在 要 会 能 可 可以 应 应该 该 得以
    和 与 及 以及 跟 同 或 或者 还是 而 而且 并 并且 且 但 但是 可是 不过 然而 只是
    因 因为 所以 因此 于是 如果 假如 要是 虽然 虽 即使 尽管 既然 无论 不管 只要 只有 除了
    于 对 对于 关于 把 被 让 给 从 自 向 往 到 为 为了 以 由 比 按 按照 通过 根据 随着 除 当
    也 就 都 还 又 才 只 再 很 太 更 最 挺 非常 十分 比较 已 已经 曾 曾经 正 正在 将 将要
    便 却 则 乃 即 就是 总 总是 一直 一起 一样 一般
    不 没 没有 别 未 无 非 勿 莫
    一 一个 一些 一下 一点 个 些 每 各 某 等 等等 所 者 们
    乎 矣 焉 哉 兮 也罢 罢了 而已
    """.split()
)
