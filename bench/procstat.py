"""CPU time of processes, read from /proc (Linux): utime + stime in seconds."""
import os

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of one process (0.0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command: state ppid ... utime is field 14, stime 15 (1-based, whole line)
    return (int(fields[11]) + int(fields[12])) / TICKS


def total_cpu(pids):
    return sum(cpu_seconds(pid) for pid in pids)
