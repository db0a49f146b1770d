"""Canonical, length-limited Huffman coding of small integer alphabets, in numpy.

Deep Compression's last stage: the cluster indices and the sparse position gaps of a pruned, shared
layer are far from uniform (a few clusters near zero hold most weights, short gaps dominate), so a
Huffman code shortens them by 20-40 %. Canonical codes are fully described by one code length per
symbol, which is all a file has to store: 4 bits per symbol, because lengths are limited to
:data:`MAX_CODE_LENGTH`.

Bits are written most significant first; the last byte is padded with zeros.

Decoding is vectorised: a table indexed by the next ``MAX_CODE_LENGTH`` bits gives the symbol and
length that start at *every* bit offset, and the offsets actually visited (0, then each offset plus
the length found there, ...) are found by pointer doubling instead of a Python loop.
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["MAX_CODE_LENGTH", "HuffmanError", "canonical_codes", "code_lengths", "decode", "encode"]

MAX_CODE_LENGTH = 15
"""Longest code allowed; 15 keeps lengths in one nibble and decode tables at 32 K entries."""


class HuffmanError(ValueError):
    """The code lengths or the bit stream are not a valid encoding."""


def code_lengths(counts: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Optimal prefix-code lengths (uint8) for symbol ``counts``, none above ``max_length``.

    Unused symbols (count 0) get length 0. A lone used symbol gets length 1, so every symbol costs
    at least one bit. When the optimal code is too deep the counts are halved (kept >= 1) until it
    fits, the usual heuristic; it costs well under 1 % on the distributions met here.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("counts must be a 1-D array of non-negative integers")
    if 2 ** max_length < np.count_nonzero(counts):
        raise ValueError(f"{np.count_nonzero(counts)} symbols do not fit codes of at most {max_length} bits")
    lengths = np.zeros(counts.size, dtype=np.uint8)
    used = np.flatnonzero(counts)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used] = 1
        return lengths
    weights = counts[used].copy()
    while True:
        depth = _huffman_depths(weights)
        if depth.max() <= max_length:
            lengths[used] = depth
            return lengths
        weights = np.maximum(weights >> 1, 1)


def _huffman_depths(weights: np.ndarray) -> np.ndarray:
    # Heap of (weight, tie-breaker, node); leaves are 0..n-1, merged nodes get parent links.
    n = weights.size
    parent = np.full(2 * n - 1, -1, dtype=np.int64)
    heap = [(int(w), i, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    next_node = n
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        parent[a] = parent[b] = next_node
        heapq.heappush(heap, (w1 + w2, next_node, next_node))
        next_node += 1
    depth = np.zeros(2 * n - 1, dtype=np.int64)
    for node in range(2 * n - 3, -1, -1):  # parents are numbered after their children
        depth[node] = depth[parent[node]] + 1
    return depth[:n]


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """The canonical code (int64, right-aligned) of every symbol; symbols of length 0 get 0.

    Raises :class:`HuffmanError` when the lengths over-subscribe the code space (Kraft sum > 1).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > MAX_CODE_LENGTH):
        raise HuffmanError(f"code lengths must be 0..{MAX_CODE_LENGTH}")
    used = lengths > 0
    if np.sum(2.0 ** -lengths[used]) > 1.0:
        raise HuffmanError("code lengths over-subscribe the code space (Kraft sum above 1)")
    order = np.lexsort((np.arange(lengths.size), lengths))
    codes = np.zeros(lengths.size, dtype=np.int64)
    code, previous = 0, 0
    for symbol in order:
        length = int(lengths[symbol])
        if length == 0:
            continue
        code <<= length - previous
        codes[symbol] = code
        code += 1
        previous = length
    return codes


def encode(symbols: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """``(bytes, number of bits)`` of ``symbols`` coded with the canonical code of ``lengths``."""
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if symbols.size == 0:
        return b"", 0
    if symbols.min() < 0 or symbols.max() >= lengths.size or (lengths[symbols] == 0).any():
        raise ValueError("a symbol has no code (outside the alphabet or of length 0)")
    codes = canonical_codes(lengths)
    symbol_lengths = lengths[symbols]
    total = int(symbol_lengths.sum())
    owner = np.repeat(np.arange(symbols.size), symbol_lengths)
    starts = np.cumsum(symbol_lengths) - symbol_lengths
    bit_in_code = np.arange(total) - starts[owner]
    bits = (codes[symbols][owner] >> (symbol_lengths[owner] - 1 - bit_in_code)) & 1
    return np.packbits(bits.astype(np.uint8)).tobytes(), total


def decode(data: bytes, n_bits: int, lengths: np.ndarray, count: int) -> np.ndarray:
    """Exactly ``count`` symbols (int64) from the first ``n_bits`` bits of ``data``.

    Raises :class:`HuffmanError` unless the stream holds exactly ``count`` valid codes filling
    exactly ``n_bits`` bits, so a damaged stream cannot decode into a plausible wrong one.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if not 0 <= n_bits <= 8 * len(data):
        raise HuffmanError(f"stream of {len(data)} bytes cannot hold {n_bits} bits")
    if count == 0:
        if n_bits:
            raise HuffmanError(f"{n_bits} bits left over after the last symbol")
        return np.zeros(0, dtype=np.int64)
    if count > n_bits:  # every code is at least one bit
        raise HuffmanError(f"{count} symbols cannot fit in {n_bits} bits")
    codes = canonical_codes(lengths)
    width = MAX_CODE_LENGTH
    table_symbol = np.full(1 << width, -1, dtype=np.int64)
    table_length = np.zeros(1 << width, dtype=np.int64)
    for symbol in np.flatnonzero(lengths):
        shift = width - int(lengths[symbol])
        start = int(codes[symbol]) << shift
        table_symbol[start: start + (1 << shift)] = symbol
        table_length[start: start + (1 << shift)] = lengths[symbol]

    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)[: (n_bits + 7) // 8])[:n_bits]
    padded = np.concatenate([bits, np.zeros(width, dtype=np.uint8)]).astype(np.int64)
    window = np.zeros(n_bits, dtype=np.int64)
    for k in range(width):  # the next `width` bits at every offset, as an integer
        window = (window << 1) | padded[k: k + n_bits]
    step = table_length[window]

    # Offsets of the codes: o_0 = 0, o_{i+1} = o_i + step[o_i]. Pointer doubling: with `jump` the
    # map "offset -> offset m codes later", offsets[m:2m] = jump[offsets[:m]], and jump∘jump skips 2m.
    # Offset n_bits is a sink; an invalid code (step 0) stays put and is caught below.
    jump = np.minimum(np.arange(n_bits) + step, n_bits)
    jump = np.append(jump, n_bits)
    offsets = np.zeros(count, dtype=np.int64)
    known = 1
    while known < count:
        take = min(known, count - known)
        offsets[known: known + take] = jump[offsets[:take]]
        known += take
        if known < count:
            jump = jump[jump]
    if offsets[-1] >= n_bits:
        raise HuffmanError(f"the stream ends before its {count} symbols")
    last_step = step[offsets]
    if (last_step == 0).any():
        raise HuffmanError("invalid code in the stream")
    end = int(offsets[-1] + last_step[-1])
    if end != n_bits:
        raise HuffmanError(f"the {count} symbols take {end} bits, the stream declares {n_bits}")
    return table_symbol[window[offsets]]
