"""LightGBM models that produce the trading policy: features, labels, heads, registry, AIPolicy.

LightGBM's OpenMP threads (libgomp) spin while they wait for each other by default. On a machine
whose cores are busy with other processes a spinning thread keeps a core its partner needs, and
training ran 5-12x slower than with passive waiting (bench/train_bench.py, README "Speed"). The
wait policy is read once, when libgomp is loaded, so it is set here, before any module of this
package imports lightgbm; a value the user set in the environment is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
