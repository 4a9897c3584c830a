"""OpenMP's wait policy for the native libraries the engine loads (XGBoost, FAISS, scikit-learn).

Each of their wheels ships GNU OpenMP (libgomp), whose idle threads spin before they sleep by default
("active"). Where the cores are shared (a build beside a server or a second test worker, on 2 cores),
a spinning thread holds a core its team-mate needs. Passive against active, medians side by side
(benchmarks/omp_wait.py; dmlc/xgboost#8729 is the same report): beside one busy core, XGBoost's training
0.75x the wall time and 0.60x the CPU, the neighbour table's FAISS search 0.86x and 0.82x; on a quiet
machine 1.03x and 1.06x the wall time (0.78x and 0.96x the CPU). The build shares its cores more often
than not (CI's two workers, a server being rebuilt for), so passive is the default; libgomp reads the
variable once, when it is loaded, so ``engine`` imports this module before anything that loads one, and
an ``OMP_WAIT_POLICY`` already in the environment (``active`` for a dedicated build machine) is kept.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
