"""Arrays handed out again only once nothing holds them (sim.recycled)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sim.recycled import Recycler


def _owner(a: np.ndarray) -> int:
    """Which buffer `a` is over (its id: holding the buffer itself would keep it from reuse)."""
    return id(a.base if a.base is not None else a)


def test_an_array_nothing_holds_is_handed_out_again():
    recycler = Recycler()
    first = recycler.take((3, 100), np.float64)
    owner = _owner(first)
    del first
    again = recycler.take((3, 90), np.float64)
    assert again.shape == (3, 90) and again.flags.c_contiguous
    assert _owner(again) == owner


def test_an_array_a_view_or_an_arrow_array_still_holds_is_not_reused():
    recycler = Recycler()
    first = recycler.take((2, 1000), np.float64)
    first[:] = 7.0
    column = pa.Array.from_buffers(pa.float64(), 1000, [None, pa.py_buffer(first[1])])
    table = pa.table({"x": column}).slice(10, 20)  # a slice of a table made over it holds it too
    del first, column
    for _ in range(5):
        other = recycler.take((2, 1000), np.float64)
        other[:] = -1.0
    assert table.column("x").to_pylist() == [7.0] * 20
    del table
    assert recycler.take((2, 1000), np.float64) is not None


def test_a_larger_request_gets_a_new_array_and_drops_free_ones_too_small():
    recycler = Recycler()
    small = recycler.take((10,), np.int32)
    del small
    big = recycler.take((1000,), np.int32)
    assert big.shape == (1000,)
    assert [o.size >= 1000 for o in recycler._owners(np.dtype(np.int32))] == [True]


def test_each_dtype_has_its_own_arrays():
    recycler = Recycler()
    ints = recycler.take((50,), np.int32)
    del ints
    floats = recycler.take((50,), np.float64)
    assert floats.dtype == np.float64 and floats.nbytes == 400
