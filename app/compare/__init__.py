"""`ragtune compare`: which method wins on a user's documents (issue 17).

A study builds QA data from a collection, tunes retrieval, trains a plain LoRA and a
RAFT LoRA (and any extra SFT methods), has every arm answer the test split through the
eval runner, checks each adapter for forgetting and writes a report with intervals,
costs and a recommendation. Modules: ``budget`` (how much work), ``study`` (the folder,
state and atomic stage results), ``arms``, ``data`` (splits, leakage, SFT files),
``services`` (the injected pieces), ``answering``, ``stages``, ``run`` (the resumable
loop), ``measure``, ``recommend``, ``plots`` and ``report``.
"""
