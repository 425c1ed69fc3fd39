"""Offline shell: the drivers that run the detection core over files, Kafka topic ranges and count
series (``spikedetect replay``). Simulation is :mod:`spikedetect.sim`, scoring and reports
:mod:`spikedetect.evaluate`; replay imports neither (tests/test_layers.py)."""
