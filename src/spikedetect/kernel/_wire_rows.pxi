# Included by _records.pyx: decoding the leaf rows of the partials wire (stream/wire.py).
# (Encoding stays Python: building the rows in C measured only ~7 % faster per leaf; the sort
# and the row lists' allocation are most of it.)


def leaf_counts(list rows):
    """``wire._partial``'s counts, ``{(region, category, source): count}``, when every row is a
    list of exactly str, str, str and int (what ``orjson.loads`` gives for our own messages);
    None otherwise (the caller's general path: conversions and errors as before)."""
    cdef dict out = {}
    cdef object row, r, c, s, v
    cdef list lst
    for row in rows:
        if type(row) is not list or len(<list>row) != 4:
            return None
        lst = <list>row
        r, c, s, v = lst[0], lst[1], lst[2], lst[3]
        if type(r) is not str or type(c) is not str or type(s) is not str or type(v) is not int:
            return None
        out[(r, c, s)] = v
    return out
