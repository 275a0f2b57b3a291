"""Two TODO blocks, one at function level and one inside a loop."""


def double(x):
    """Twice x."""
    # TODO #1: set y to 2 * x.
    # ------------------------------- BEGIN TODO #1 -------------------------------
    y = 2 * x
    # -------------------------------- END TODO #1 --------------------------------
    return y


def clamp(values, low, high):
    """Each value limited to [low, high]."""
    out = []
    for value in values:
        # TODO #2: set c to value limited to [low, high].
        # ---- BEGIN TODO #2 ----
        c = min(max(value, low), high)
        # ---- END TODO #2 ----
        out.append(c)
    return out
