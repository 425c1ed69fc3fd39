"""Golden files: the exact bytes ``spikedetect replay`` writes on fixed inputs (see make.py)."""
