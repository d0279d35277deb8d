"""Tests of the simulation (cluster/sim). They need Python 3.12+ and simloop (`pip install -e '.[sim]'`); on
another interpreter every module is skipped with `sim_unavailable`, the reason `--sim` gives."""

from cluster.sim.support import unavailable_reason

sim_unavailable = unavailable_reason()
