"""Results tables from run folders, in three steps that import only downwards.

:mod:`.collect` (run folders → :class:`~.collect.Run` records) ← :mod:`.aggregate`
(settings, mean ± std over seeds with pandas ``groupby().agg``) ← :mod:`.render`
(markdown, LaTeX, CSV files). ``tasks/table.py`` and ``tasks/plot.py`` are the
command lines on top; nothing here imports them back.
"""
