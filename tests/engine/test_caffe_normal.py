"""boost's unit normal (ziggurat, float) as Caffe's gaussian filler draws it: the engine
decides most outputs for a whole block at once; here each output is made one by one, as
boost's loop makes it (the rare tail beyond r by the engine's scalar code, which both
use), from the plain-Python mt19937 of the test helpers, and the two must agree bit for
bit, and leave the stream at the same place."""
from __future__ import annotations

import math

import numpy
import pytest

from engine.caffe_rng import CaffeStream, _ziggurat_table
from tests.engine.helpers import mt19937_outputs

F32 = numpy.float32


def one_by_one(raws: list[int], count: int) -> tuple[list[numpy.float32], int]:
    """``count`` unit normals from ``raws`` and how many draws they took."""
    table_x, table_y = _ziggurat_table("normal")
    position = 0

    def draw() -> int:
        nonlocal position
        position += 1
        return raws[position - 1]

    def uniform01() -> numpy.float32:
        while True:
            u = F32(draw()) * (F32(1) / (F32(4294967295.0) + F32(1)))
            if u < F32(1):
                return u

    out = []
    for _ in range(count):
        while True:  # boost's unit_normal_distribution<float>::operator()
            value = draw()
            i, sign = (value & 255) >> 1, F32(1) if value & 1 else F32(-1)
            x = F32(value >> 8) * F32(2.0 ** -24) * F32(table_x[i])
            if float(x) < table_x[i + 1]:
                break
            if i == 0:  # the tail beyond r: the engine's own scalar code (the block walk hands it over too)
                x = CaffeStream(0)._normal_tail(draw)
                break
            y = F32(table_y[i]) + uniform01() * F32(table_y[i + 1] - table_y[i])
            if y < F32(math.exp(float(-x * x / F32(2)))):
                break
        out.append(x * sign)
    return out, position


@pytest.mark.parametrize("seed,count", [(1701, 5000), (3, 4096), (12345, 700), (8, 1)])
def test_the_block_walk_is_boosts_loop(seed, count):
    raws = mt19937_outputs(seed, count * 2 + 200)
    expected, used = one_by_one(raws, count)
    stream = CaffeStream(seed)
    got = stream.normal(count, 0.0, 1.0)
    assert got.tobytes() == numpy.array(expected, dtype=F32).tobytes()
    assert stream.rand() == raws[used]  # the stream goes on from the same draw
