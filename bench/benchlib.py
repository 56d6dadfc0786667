"""benchlib.py — helpers the bench scripts share."""


def set_autogroup_nice(nice):
    """Set /proc/self/autogroup's nice; returns the previous value."""
    with open("/proc/self/autogroup") as f:
        old = int(f.read().split("nice")[1])
    with open("/proc/self/autogroup", "w") as f:
        f.write(str(nice))
    return old
