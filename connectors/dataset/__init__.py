"""The output dataset: where every file lives (``layout``), how it is written (``write``)
and what the stages read back from it (``read``)."""
