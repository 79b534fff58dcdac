"""Data augmentation (``data_augmentation.py``): masked-LM and GloVe word replacement.

- ``augment``: the algorithm, batched, and writing ``train_aug.tsv`` chunk by chunk;
- ``parts``: the chunks' part files and manifest: resuming, sharing among processes, merging;
- ``glove``: GloVe text files (with a ``.npy`` cache) and nearest neighbours;
- ``stopwords``, ``stopwords_zh``: the English and Chinese stop-word lists;
- ``chinese``: CJK characters, segmented text, and joining CJK words back without spaces.
"""
