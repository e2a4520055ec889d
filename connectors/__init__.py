"""Sources and sinks for newswatch pipelines, shaped like Beam I/O transforms."""
