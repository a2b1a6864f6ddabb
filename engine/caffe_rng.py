"""Caffe's own random stream, for fillers that give Caffe's initial weights bit for bit.

Caffe draws its fillers from one ``boost::mt19937`` seeded with ``random_seed`` (as
an unsigned int) and read through boost's distributions in ``Dtype``:
``uniform_real`` (uniform, xavier, positive_unitball), ``normal_distribution``
(gaussian, msra: boost's 128-layer ziggurat, whose tail draws two 256-layer
ziggurat exponentials) and ``bernoulli_distribution`` (gaussian's ``sparse``).
This module reproduces those draws for float32; the ziggurat tables are computed
here from their defining equations (``_ziggurat_table``). The same stream gives
Dropout's masks (``caffe_rng_bernoulli<double>``) and the 32-bit values
(``caffe_rng_rand``) that data layers take at setup.

Its state is the Mersenne Twister's (624 words and a position): boost's
distributions are built anew for every Caffe call and keep no cached values
(its ziggurat normal has no spare, unlike a Box-Muller one), so
:meth:`CaffeStream.state` is all there is to save.

The data layers' own streams are made here too:

* a ``CaffeStream`` seeded with one ``caffe_rng_rand()`` value is the
  ``Caffe::RNG`` of a DataTransformer (``Rand(n)``: a raw output ``% n``,
  :meth:`CaffeStream.raws`) or of ImageData's ``prefetch_rng_``;
* :func:`caffe_shuffle` is ``caffe::shuffle`` (include/caffe/util/rng.hpp), a
  Fisher-Yates pass that picks with ``boost::uniform_int`` (:func:`boost_uniform_int`);
* :class:`GlibcRand` is glibc's ``rand()`` (never seeded by Caffe, so from seed 1)
  and :func:`libstdcxx_random_shuffle` the ``std::random_shuffle(first, last)`` of
  libstdc++ over it, which HDF5Data uses.
"""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import Any, Callable, MutableSequence

import numpy

from .errors import DataError, NetDefinitionError

F32 = numpy.float32
_BUFFER = 4096  # outputs drawn ahead (all reads go through _take)

# Where each ziggurat's rectangles end (r) and their common area (v), solved to 40
# digits from: v = r f(r) + tail area, and x[i+1] = f^-1(f(x[i]) + v / x[i]) reaching 0
# exactly at the last layer (128 layers of exp(-x^2/2), 256 of exp(-x)).
_NORMAL_R = "3.442619855896652121424320491467339704338"
_NORMAL_V = "0.00991256303533646107909568530581016219738"
_EXPONENTIAL_R = "7.697117470131049714044628048015215499114"
_EXPONENTIAL_V = "0.003949659822581557219977571956814861091913"
_tables: dict = {}


def _ziggurat_table(name: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(x, y) of the ziggurat: x[0] = v / f(r), x[1] = r, ..., x[layers] = 0;
    y[i] = f(x[i]) with y[0] = 0 and y[layers] = 1 (computed once, in 50 digits)."""
    if name not in _tables:
        normal = name == "normal"
        layers = 128 if normal else 256
        with localcontext() as context:
            context.prec = 50

            def f(x: Decimal) -> Decimal:
                return (-(x * x) / 2).exp() if normal else (-x).exp()

            def f_inverse(y: Decimal) -> Decimal:
                return (-2 * y.ln()).sqrt() if normal else -y.ln()

            r, v = Decimal(_NORMAL_R if normal else _EXPONENTIAL_R), Decimal(_NORMAL_V if normal else _EXPONENTIAL_V)
            xs = [v / f(r), r]
            for _ in range(1, layers - 1):
                xs.append(f_inverse(f(xs[-1]) + v / xs[-1]))
            xs.append(Decimal(0))
            ys = [Decimal(0)] + [f(x) for x in xs[1:layers]] + [Decimal(1)]
        _tables[name] = (numpy.array([float(x) for x in xs]), numpy.array([float(y) for y in ys]))
    return _tables[name]


class CaffeStream:
    """boost::mt19937 (seeded as Caffe seeds it) and boost's float distributions on it."""

    def __init__(self, seed: int):
        key = [int(seed) & 0xFFFFFFFF]
        for i in range(1, 624):  # the Mersenne Twister's init_genrand
            previous = key[-1]
            key.append((1812433253 * (previous ^ (previous >> 30)) + i) & 0xFFFFFFFF)
        self.bits = numpy.random.MT19937()
        self.bits.state = {"bit_generator": "MT19937",
                           "state": {"key": numpy.array(key, dtype=numpy.uint32), "pos": 624}}
        self._anchor = self.bits.state  # the twister's state where ``_buffer`` begins
        self._buffer = numpy.empty(0, dtype=numpy.uint64)
        self._position = 0

    # -- state ----------------------------------------------------------------------
    def state(self) -> dict:
        """The stream's position: ``{"key": 624 ints, "pos": int}`` (fresh, JSON-ready)."""
        if self._position == self._buffer.size:  # all drawn ahead is used: the twister is there
            inner = self.bits.state["state"]
        else:
            twister = numpy.random.MT19937()
            twister.state = self._anchor
            if self._position:
                twister.random_raw(self._position)
            inner = twister.state["state"]
        return {"key": [int(word) for word in inner["key"]], "pos": int(inner["pos"])}

    def set_state(self, state: dict) -> None:
        """Go to a position that :meth:`state` gave (checked by :func:`checked_state`)."""
        self.bits.state = _twister_state(checked_state(state))
        self._anchor = self.bits.state
        self._buffer = numpy.empty(0, dtype=numpy.uint64)
        self._position = 0

    # -- the engine's 32-bit outputs, in order ------------------------------------
    def _take(self, count: int) -> numpy.ndarray:
        """The next ``count`` outputs (drawn ahead in blocks; ``_untake`` gives back)."""
        if self._buffer.size - self._position < count:
            if self._position < self._buffer.size:  # back to where the outputs used so far end
                self.bits.state = self._anchor
                if self._position:
                    self.bits.random_raw(self._position)
            self._anchor = self.bits.state
            self._buffer = self.bits.random_raw(max(count, _BUFFER))
            self._position = 0
        taken = self._buffer[self._position:self._position + count]
        self._position += count
        return taken

    def _untake(self, count: int) -> None:
        self._position -= count

    def _raw(self) -> int:
        return int(self._take(1)[0])

    def _uniform_01(self, read) -> numpy.float32:
        """boost::uniform_01<float>: float(u) * (1 / (float(2^32 - 1) + 1)), redrawn at 1."""
        factor = F32(1) / (F32(4294967295.0) + F32(1))
        while True:
            value = F32(read()) * factor
            if value < F32(1):
                return value

    # -- distributions ----------------------------------------------------------------
    def uniform(self, count: int, low, high, dtype=numpy.float32) -> numpy.ndarray:
        """caffe_rng_uniform: boost::uniform_real<Dtype>(low, nextafter(high)), a value
        that reaches the upper bound redrawn."""
        kind = numpy.dtype(dtype).type
        if not (numpy.isfinite(kind(low)) and numpy.isfinite(kind(high)) and low <= high):
            raise NetDefinitionError(f"uniform filler: the range [{low}, {high}] is not finite and ordered")
        low, high = kind(low), numpy.nextafter(kind(high), kind(numpy.inf))
        span, divisor = high - low, kind(4294967295.0) + kind(1)  # boost: float(max - min) + 1
        out = numpy.empty(count, dtype=kind)
        filled = 0
        while filled < count:
            raw = self._take(count - filled).astype(kind)
            with numpy.errstate(over="ignore", invalid="ignore"):
                values = raw / divisor * span + low
            kept = values[values < high]
            out[filled:filled + kept.size] = kept
            filled += kept.size
        return out

    def normal(self, count: int, mean, sigma) -> numpy.ndarray:
        """caffe_rng_gaussian<float>: boost::normal_distribution<float>, unit * sigma + mean."""
        return self._unit_normals(count) * F32(sigma) + F32(mean)

    def _unit_normals(self, count: int) -> numpy.ndarray:
        """boost's unit_normal_distribution<float>, ``count`` times, in stream order.

        Each output starts with the next 32-bit draw. About 2.8% of them fall outside their
        ziggurat rectangle and take one more draw for the wedge test: accepted, the output
        is settled; rejected, the draw after starts the same output again. All of that is
        decided for the whole block at once, and which draws start an output follows from
        the runs of two-draw steps (:func:`_output_starts`). The rest (the tail, a uniform
        that rounds to 1: about 0.06%) go one by one through ``_normal_slow``, reading on
        from the draw after theirs."""
        if count > _CHUNK:  # a block at a time: the arrays of one stay in the caches
            pieces = [self._unit_normals(min(_CHUNK, count - done)) for done in range(0, count, _CHUNK)]
            return numpy.concatenate(pieces)
        out = numpy.empty(count, dtype=F32)
        if count <= 0:
            return out
        table_x, _ = _ziggurat_table("normal")
        raw = self._take(count)
        layer = ((raw & 255) >> 1).astype(numpy.intp)
        sign = numpy.where(raw & 1, F32(1), F32(-1))
        x = (raw >> 8).astype(F32) * F32(2.0 ** -24) * table_x.astype(F32)[layer]
        one_draw = x.astype(numpy.float64) < table_x[layer + 1]
        two_draws, accepted = _wedge_steps(raw, x, layer, one_draw)
        gives_output = one_draw | accepted
        value = x * sign
        filled, cursor = 0, 0  # outputs made; draws of ``raw`` used

        def read() -> int:
            nonlocal cursor
            if cursor < count:
                cursor += 1
                return int(raw[cursor - 1])
            return self._raw()  # past this block: straight from the stream

        settled = one_draw | two_draws
        walk = _Walk(two_draws, settled)
        while filled < count:
            if cursor >= count:  # the slow draws used up the block: the rest come after it
                out[filled:] = self._unit_normals(count - filled)
                break
            starts, slow = walk.starts_from(cursor)
            outputs = starts[gives_output[starts]]
            if outputs.size >= count - filled:  # the last output needed is here
                outputs = outputs[:count - filled]
                out[filled:] = value[outputs]
                filled = count
                cursor = int(outputs[-1]) + (2 if two_draws[outputs[-1]] else 1)
                break
            out[filled:filled + outputs.size] = value[outputs]
            filled += outputs.size
            if starts.size:
                cursor = int(starts[-1]) + (2 if two_draws[starts[-1]] else 1)
            if slow is not None:
                cursor = slow + 1
                out[filled] = self._normal_slow(x[slow], int(layer[slow]), sign[slow], read)
                filled += 1
        self._untake(max(count - cursor, 0))
        return out

    def _normal_slow(self, x, layer: int, sign, read) -> numpy.float32:
        """The rest of boost's unit_normal_distribution for a draw outside its rectangle."""
        table_x, table_y = _ziggurat_table("normal")
        while True:
            if layer == 0:
                return self._normal_tail(read) * sign
            y = F32(table_y[layer]) + self._uniform_01(read) * F32(table_y[layer + 1] - table_y[layer])
            if y < F32(math.exp(float(-x * x / F32(2)))):
                return x * sign
            value = read()
            layer, sign = (value & 255) >> 1, F32(1) if value & 1 else F32(-1)
            x = F32(value >> 8) * F32(2.0 ** -24) * F32(table_x[layer])
            if float(x) < table_x[layer + 1]:
                return x * sign

    def _normal_tail(self, read) -> numpy.float32:
        """Beyond r: x = Exp(r), y = Exp(1) until 2y > x^2; r + x."""
        start = F32(_ziggurat_table("normal")[0][1])
        while True:
            x = self._unit_exponential(read) / start
            y = self._unit_exponential(read)
            if F32(2) * y > x * x:
                return x + start

    def _unit_exponential(self, read) -> numpy.float32:
        """boost's unit_exponential_distribution<float> (its tail is a shifted body)."""
        table_x, table_y = _ziggurat_table("exponential")
        shift = F32(0)
        while True:
            value = read()
            layer = value & 255
            x = F32(value >> 8) * F32(2.0 ** -24) * F32(table_x[layer])
            if x < F32(table_x[layer + 1]):
                return shift + x
            if layer == 0:
                shift = shift + F32(table_x[1])
                continue
            y = F32(table_y[layer]) + self._uniform_01(read) * F32(table_y[layer + 1] - table_y[layer])
            if y < F32(math.exp(float(-x))):
                return shift + x

    def bernoulli(self, count: int, probability, dtype=numpy.float32) -> numpy.ndarray:
        """caffe_rng_bernoulli<Dtype>: Dtype(u) <= p * Dtype(2^32 - 1), one draw per value
        in order; p == 0 draws nothing. Dropout calls it with a double ``p``."""
        kind = numpy.dtype(dtype).type
        p = kind(probability)
        if not 0 <= p <= 1:
            raise NetDefinitionError(f"bernoulli: the probability {probability} is outside [0, 1]")
        if p == 0:
            return numpy.zeros(count, dtype=bool)
        return self._take(count).astype(kind) <= p * kind(4294967295.0)

    def rand(self) -> int:
        """caffe_rng_rand(): the next 32-bit output."""
        return self._raw()

    def raws(self, count: int) -> numpy.ndarray:
        """The next ``count`` 32-bit outputs (uint64, a fresh array), as ``(*rng)()`` reads them."""
        return self._take(count).copy()

    def uniform_int(self, low: int, high: int) -> int:
        """``boost::uniform_int<T>(low, high)(rng)``: see :func:`boost_uniform_int`."""
        return boost_uniform_int(self._raw, low, high)


def saved_stream_state(state, where: str, what: str) -> dict | None:
    """A saved :class:`CaffeStream` position to go to, or None to leave the stream where
    it is (nothing saved, or a numpy stream's state that an older engine saved).
    DataError naming ``where`` and ``what`` (the stream) for anything else."""
    if state is None or (isinstance(state, dict) and "bit_generator" in state):
        return None
    try:
        return checked_state(state)
    except ValueError as exc:
        raise DataError(f"{where}: the saved {what} random stream is corrupt: {exc}") from None


def checked_state(state) -> dict:
    """``state`` if it is a stream position as :meth:`CaffeStream.state` gives (ValueError if not)."""
    if not isinstance(state, dict) or set(state) != {"key", "pos"}:
        raise ValueError("the Caffe stream's state must hold exactly 'key' and 'pos'")
    key, pos = state["key"], state["pos"]
    if not isinstance(key, list) or len(key) != 624 or \
            not all(isinstance(word, int) and 0 <= word <= 0xFFFFFFFF for word in key):
        raise ValueError("the Caffe stream's key must be 624 unsigned 32-bit integers")
    if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos <= 624:
        raise ValueError(f"the Caffe stream's position {pos!r} is not in [0, 624]")
    if not any(key):
        raise ValueError("the Caffe stream's key is all zeros")
    return state


def _twister_state(state: dict) -> Any:
    return {"bit_generator": "MT19937",
            "state": {"key": numpy.array(state["key"], dtype=numpy.uint32), "pos": state["pos"]}}


# -- boost::uniform_int and caffe::shuffle ------------------------------------------------
_ENGINE_SPAN = 0xFFFFFFFF  # mt19937: max() - min()


def _bucket_size(span: int) -> int:
    """boost's bucket for ``span + 1`` values out of a 32-bit engine (``brange`` at its
    type's maximum: ``brange / (span + 1)``, one more when ``span + 1`` divides 2^32)."""
    bucket = _ENGINE_SPAN // (span + 1)
    if _ENGINE_SPAN % (span + 1) == span:
        bucket += 1
    return bucket


def boost_uniform_int(draw: Callable[[], int], low: int, high: int) -> int:
    """boost's ``generate_uniform_int`` over a 32-bit engine (``draw`` gives its outputs),
    for a range narrower than the engine's: an output divided by the bucket size, redrawn
    while the quotient is past the range; ``low == high`` draws nothing."""
    span = int(high) - int(low)
    if span < 0:
        raise ValueError(f"uniform_int: the range [{low}, {high}] is empty")
    if span == 0:
        return int(low)
    if span >= _ENGINE_SPAN:
        raise ValueError(f"uniform_int: the range [{low}, {high}] is not narrower than 32 bits")
    bucket = _bucket_size(span)
    while True:
        pick = int(draw()) // bucket
        if pick <= span:
            return int(low) + pick


def caffe_shuffle(sequence: MutableSequence, stream: CaffeStream) -> None:
    """``caffe::shuffle(begin, end, gen)`` in place: for i = n-1 down to 1, swap item i with
    item ``boost::uniform_int(0, i)``. The picks are drawn in blocks and checked together;
    a rejected draw is redrawn for the same i, as boost does."""
    i = len(sequence) - 1
    while i > 0:
        highs = numpy.arange(i, 0, -1, dtype=numpy.uint64)  # i, i-1, ..., 1
        picks = stream._take(i) // _bucket_sizes(highs)
        rejected = numpy.flatnonzero(picks > highs)
        accepted = int(rejected[0]) if rejected.size else i
        for k, j in enumerate(picks[:accepted].tolist()):
            position = i - k
            sequence[position], sequence[j] = sequence[j], sequence[position]
        if accepted < i:
            stream._untake(i - accepted - 1)  # the rejected draw stays used; its redraw comes next
        i -= accepted


def _bucket_sizes(highs: numpy.ndarray) -> numpy.ndarray:
    """:func:`_bucket_size` for many spans at once."""
    span = numpy.uint64(_ENGINE_SPAN)
    bucket = span // (highs + numpy.uint64(1))
    return bucket + (span % (highs + numpy.uint64(1)) == highs).astype(numpy.uint64)


# -- glibc rand() and libstdc++'s std::random_shuffle -------------------------------------
_GLIBC_DEGREE, _GLIBC_SEPARATION = 31, 3  # TYPE_3: x^31 + x^3 + 1


class GlibcRand:
    """glibc's ``rand()`` (``random_r`` with its default TYPE_3 table): ``srand(seed)``
    fills 31 words by 16807 * x mod (2^31 - 1) (glibc's Schrage steps on a signed 32-bit
    word) and throws 310 outputs away; each output adds the word 3 places back into the
    front word and returns that sum (mod 2^32) shifted right by one. Unseeded, it starts
    from seed 1."""

    def __init__(self, seed: int = 1):
        self.seed(seed)

    def seed(self, seed: int) -> None:
        """``srand(seed)`` (0 is taken as 1, as glibc does)."""
        seed = int(seed) & 0xFFFFFFFF or 1
        table = [seed]
        word = seed - (1 << 32) if seed >= 1 << 31 else seed  # glibc's word is an int32_t
        for _ in range(1, _GLIBC_DEGREE):
            high = abs(word) // 127773 * (1 if word >= 0 else -1)  # C's division truncates
            low = word - high * 127773
            word = 16807 * low - 2836 * high
            if word < 0:
                word += 2147483647
            table.append(word & 0xFFFFFFFF)
        self._table = table
        self._front = _GLIBC_SEPARATION
        for _ in range(10 * _GLIBC_DEGREE):
            self.rand()

    def rand(self) -> int:
        """The next ``rand()``, in [0, 2^31)."""
        table, front = self._table, self._front
        rear = front - _GLIBC_SEPARATION
        value = (table[front] + table[rear]) & 0xFFFFFFFF  # rear may be negative: counts from the end
        table[front] = value
        self._front = front + 1 if front + 1 < _GLIBC_DEGREE else 0
        return value >> 1

    def state(self) -> dict:
        """``{"table": 31 ints, "front": int}`` (fresh, JSON-ready)."""
        return {"table": list(self._table), "front": self._front}

    def set_state(self, state: dict) -> None:
        """Go to a position :meth:`state` gave (checked by :func:`checked_glibc_state`)."""
        state = checked_glibc_state(state)
        self._table, self._front = list(state["table"]), state["front"]


def checked_glibc_state(state) -> dict:
    """``state`` if it is a position as :meth:`GlibcRand.state` gives (ValueError if not)."""
    if not isinstance(state, dict) or set(state) != {"table", "front"}:
        raise ValueError("the glibc rand() state must hold exactly 'table' and 'front'")
    table, front = state["table"], state["front"]
    if not isinstance(table, list) or len(table) != _GLIBC_DEGREE or \
            not all(isinstance(word, int) and not isinstance(word, bool) and 0 <= word <= 0xFFFFFFFF
                    for word in table):
        raise ValueError(f"the glibc rand() table must be {_GLIBC_DEGREE} unsigned 32-bit integers")
    if not isinstance(front, int) or isinstance(front, bool) or not 0 <= front < _GLIBC_DEGREE:
        raise ValueError(f"the glibc rand() position {front!r} is not in [0, {_GLIBC_DEGREE})")
    return state


def libstdcxx_random_shuffle(sequence: MutableSequence, glibc: GlibcRand) -> None:
    """libstdc++'s ``std::random_shuffle(first, last)`` in place: for i = 1 .. n-1,
    j = ``rand() % (i + 1)`` and items i and j swap when they differ."""
    for i in range(1, len(sequence)):
        j = glibc.rand() % (i + 1)
        if i != j:
            sequence[i], sequence[j] = sequence[j], sequence[i]


#: Draws looked at after a slow output, to find where its walk meets the block's own.
_RESYNC = 64
#: Outputs made per block of draws.
_CHUNK = 1 << 18
#: boost::uniform_01<float>'s factor, 1 / (float(2^32 - 1) + 1) = 2^-32
_UNIFORM_FACTOR = F32(1) / (F32(4294967295.0) + F32(1))


def _wedge_steps(raw, x, layer, one_draw) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Per draw, as the first of an output: (two_draws, accepted). ``two_draws``: it falls
    outside its rectangle (not in the tail's layer 0) and the next draw, as boost's
    uniform, is below 1, so the wedge test ``y = Y[i] + u * (Y[i+1] - Y[i]) < exp(-x²/2)``
    (in float, as boost) settles it in two draws; ``accepted``: the test passed, the output
    is x * sign. Rejected, the output starts again at the draw after."""
    _, table_y = _ziggurat_table("normal")
    candidates = ~one_draw & (layer != 0)
    candidates[-1] = False  # its uniform would come after the block
    at = numpy.flatnonzero(candidates)
    uniform = raw[at + 1].astype(F32) * _UNIFORM_FACTOR
    lay = layer[at]
    y = table_y.astype(F32)[lay] + uniform * (table_y[lay + 1] - table_y[lay]).astype(F32)
    xs = x[at]
    half_square = (-xs * xs) / F32(2)
    density = numpy.exp(half_square.astype(numpy.float64)).astype(F32)
    near = numpy.flatnonzero(numpy.abs(y - density) <= numpy.spacing(density))
    for k in near:  # where the last bit of the double exp could matter, C's exp decides
        density[k] = F32(math.exp(float(half_square[k])))
    below_one = uniform < F32(1)
    two_draws = numpy.zeros(raw.size, dtype=bool)
    two_draws[at[below_one]] = True
    accepted = numpy.zeros(raw.size, dtype=bool)
    accepted[at[below_one & (y < density)]] = True
    return two_draws, accepted


def _output_starts(two_draws: numpy.ndarray) -> numpy.ndarray:
    """The draws that start an output (or start it again after a wedge rejection), read
    from position 0 on, when a start at ``two_draws`` takes two draws and any other one
    (the caller stops at the first start that needs more). A run of two-draw candidates
    starting at a alternates: a starts, a + 1 is its second draw, a + 2 starts, ..."""
    size = two_draws.size
    index = numpy.arange(size)
    previous = numpy.concatenate(([False], two_draws[:-1]))
    run_start = two_draws & ~previous
    first_of_run = numpy.maximum.accumulate(numpy.where(run_start, index, -1))
    second_draw = numpy.zeros(size, dtype=bool)
    second_draw[1:] = two_draws[:-1] & ((index[:-1] - first_of_run[:-1]) % 2 == 0)
    return index[~second_draw]


class _Walk:
    """Which draws of a block start an output, from any position on. The walk from the
    block's first draw is worked out once; after a slow output (which takes a number of
    draws known only as it is made) the walk from there meets it again within a few
    draws (the runs of two-draw steps are short), and follows it from then on."""

    def __init__(self, two_draws: numpy.ndarray, settled: numpy.ndarray) -> None:
        self.two_draws, self.settled = two_draws, settled
        self.starts = _output_starts(two_draws)
        self.is_start = numpy.zeros(two_draws.size, dtype=bool)
        self.is_start[self.starts] = True
        self.slow_starts = self.starts[~settled[self.starts]]

    def starts_from(self, cursor: int) -> tuple[numpy.ndarray, int | None]:
        """(the starts from ``cursor`` up to the first one that needs the slow path, that
        one or None). Without a slow one they may stop short of the block's end; the caller
        goes on from after the last."""
        local = numpy.empty(0, dtype=numpy.intp)
        join: int | None = cursor
        if not self.is_start[cursor]:
            local = _output_starts(self.two_draws[cursor:cursor + _RESYNC]) + cursor
            met = numpy.flatnonzero(self.is_start[local])
            join = int(local[met[0]]) if met.size else None
            local = local[:met[0]] if met.size else local
        slow_here = local[~self.settled[local]]
        if slow_here.size:
            return local[local < slow_here[0]], int(slow_here[0])
        if join is None:
            return local, None
        k = numpy.searchsorted(self.slow_starts, join)
        slow = int(self.slow_starts[k]) if k < self.slow_starts.size else None
        first = numpy.searchsorted(self.starts, join)
        last = numpy.searchsorted(self.starts, slow) if slow is not None else self.starts.size
        return numpy.concatenate((local, self.starts[first:last])), slow
