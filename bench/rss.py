"""Resident-set-size readings for the memory workload, in KiB."""

import os
import resource
import sys


def current_kib():
    """The process's resident set size now.

    Read from /proc where there is one: the peak so far (ru_maxrss) is a bad
    baseline, because memory freed after start-up would be counted as free
    room and hide part of what the workload allocates.
    """
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return peak_kib()


def peak_kib():
    """The process's peak resident set size so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS
