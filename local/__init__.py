"""local: the whole system on one machine, without AWS or Docker.

``python -m local demo|up|status|invoke|prepare`` (see :mod:`local.cli`). The parts: :mod:`local.emulator`
(moto server with fidelity fixes), :mod:`local.template` (names and settings read from template.yaml),
:mod:`local.stack` (local deploy; the real deploy function answers a local ResponseURL),
:mod:`local.functions` (a Lambda execution environment per function), :mod:`local.delivery` (S3 events
to the trigger with Lambda's retry-then-dead-letter semantics), :mod:`local.runner` (runs each started
execution's processing step as a subprocess) and :mod:`local.runtime` (all of it started and stopped as
one).
"""
