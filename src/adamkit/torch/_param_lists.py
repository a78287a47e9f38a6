"""Small helpers over a parameter group's list of parameters."""


def rounds(params):
    """``params`` split into rounds in which each parameter appears once: the first listing of
    each, then the second listing of those listed twice, and so on."""
    listings, seen = [], {}
    for param in params:
        count = seen.get(id(param), 0)
        seen[id(param)] = count + 1
        if count == len(listings):
            listings.append([])
        listings[count].append(param)
    return listings


def pick(indices, *lists):
    """The entries at ``indices`` of each of ``lists``."""
    return tuple([values[i] for i in indices] for values in lists)


def index_of(param, params):
    """The index of the first listing of ``param`` (by identity) in ``params``."""
    return next(i for i, p in enumerate(params) if p is param)
