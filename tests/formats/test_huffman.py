"""Canonical Huffman coding: round trips, optimality against the entropy bound, damaged streams."""

import heapq

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from squeezekit.formats import huffman


def _optimal_cost(counts):
    """Total bits of an optimal (unlimited) Huffman code, by the textbook merge sum."""
    heap = [int(c) for c in counts if c]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


@given(st.lists(st.integers(0, 40), min_size=1, max_size=2000), st.integers(1, 256))
@settings(max_examples=60, deadline=None)
def test_round_trip_and_optimal_length(values, alphabet):
    symbols = np.asarray(values, dtype=np.int64) % alphabet
    counts = np.bincount(symbols, minlength=alphabet)
    lengths = huffman.code_lengths(counts)
    data, n_bits = huffman.encode(symbols, lengths)
    assert n_bits == int((counts * lengths).sum())
    if lengths.max() < huffman.MAX_CODE_LENGTH:  # no length limiting: must be optimal
        assert n_bits == _optimal_cost(counts)
    np.testing.assert_array_equal(huffman.decode(data, n_bits, lengths, symbols.size), symbols)


def test_length_limit_on_a_fibonacci_distribution():
    # Fibonacci counts make the optimal code as deep as possible (depth n - 1).
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    counts = np.asarray(fib)
    lengths = huffman.code_lengths(counts)
    assert lengths.max() <= huffman.MAX_CODE_LENGTH  # unlimited, it would be 29 deep
    assert np.sum(2.0 ** -lengths.astype(float)) <= 1
    symbols = np.repeat(np.arange(30), 1 + np.arange(30) % 3)
    data, n_bits = huffman.encode(symbols, lengths)
    np.testing.assert_array_equal(huffman.decode(data, n_bits, lengths, symbols.size), symbols)


def test_canonical_codes_are_prefix_free_and_ordered():
    lengths = np.array([2, 1, 3, 3, 0])
    codes = huffman.canonical_codes(lengths)
    assert [format(int(c), f"0{l}b") for c, l in zip(codes[:4], lengths[:4])] == ["10", "0", "110", "111"]


@pytest.mark.parametrize("mutation", ["count", "bits", "oversubscribed", "truncated"])
def test_damaged_streams_raise(mutation):
    symbols = np.array([0, 1, 2, 2, 2, 1, 0, 3])
    lengths = huffman.code_lengths(np.bincount(symbols))
    data, n_bits = huffman.encode(symbols, lengths)
    with pytest.raises(huffman.HuffmanError):
        if mutation == "count":
            huffman.decode(data, n_bits, lengths, symbols.size + 1)
        elif mutation == "bits":
            huffman.decode(data, n_bits - 1, lengths, symbols.size)
        elif mutation == "oversubscribed":
            huffman.decode(data, n_bits, np.array([1, 1, 1, 2]), symbols.size)
        else:
            huffman.decode(data[:1], n_bits, lengths, symbols.size)


def test_incomplete_code_rejects_unused_bit_patterns():
    lengths = np.array([2, 2, 0])  # codes 00 and 01; patterns starting with 1 are invalid
    with pytest.raises(huffman.HuffmanError, match="invalid code"):
        huffman.decode(bytes([0b1000_0000]), 2, lengths, 1)
