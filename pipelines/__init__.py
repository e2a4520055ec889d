"""The newswatch Beam pipeline: config, stages, and the command line."""
