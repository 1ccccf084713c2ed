"""The whole-chain orchestration on top of train/, export/ and runtimes/ (nothing below imports it).

* ``python -m pipeline`` (:mod:`pipeline.run`): teacher -> BURN stage 1 -> stage 2 -> evaluate -> export ->
  verify -> bench -> report, each phase reading the previous phases' files;
* :mod:`pipeline.markdown_report`: the run's ``report/README.md`` and PNGs, built from those files;
* ``python -m pipeline.results`` (:mod:`pipeline.results`): the results table, BURN against its baselines.
"""
