"""Exit codes of the commands that run the pipeline, for schedulers and supervisors.

``newswatch run`` (and ``stream``) exit with:

    0   success (including "nothing new")
    2   configuration error: fix the config or the command line; retrying will not help
    3   every source failed (no feed answered)
    4   the run failed while reading, writing or committing its output
    75  another run holds the output folder's run lock (EX_TEMPFAIL): nothing was done,
        try again at the next scheduled time; the message names the holder and its expiry
        (``newswatch alerts retry`` exits 75 too, having moved nothing)
"""

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_ALL_SOURCES_FAILED = 3
EXIT_RUN_FAILED = 4
# EX_TEMPFAIL from sysexits.h: a temporary condition, try again later.
EXIT_LOCK_HELD = 75
