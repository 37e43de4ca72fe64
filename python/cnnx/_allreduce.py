"""Sums across processes with the same bits on every process, over mpi4py point-to-point calls
(any object with ``Get_rank``, ``Get_size`` and ``Sendrecv``): the upper levels of the
data-parallel step's summation tree (cnnx/data_parallel.hpp, ``_core.ReductionTree``).

``tree_allreduce`` is recursive halving and doubling: for a power-of-two number of processes each
owning one subtree of a balanced tree. ``BucketReducer`` covers every other layout: each process
owns a few subtrees ("fragments"); the bucket is cut into one chunk per process, every process
sends each chunk's fragments to the chunk's owner, which joins them by the tree's combine steps,
then every process sends its finished chunk to every other: (f + 1) (P-1)/P of the bucket per
process that owns f fragments, in 2 (P-1) exchanges, where recursive halving sends 2 (P-1)/P in
2 log2 P exchanges.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _is_power_of_two(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def tree_allreduce(comm: Any, buf: np.ndarray, scratch: np.ndarray | None = None, tag: int = 0) -> np.ndarray:
    """Sums ``buf`` (1-D, contiguous) over the processes of ``comm`` in place, over a fixed
    balanced binary tree: process r is first paired with r^1, then r^2, r^4, ... (recursive
    halving of the vector, then recursive doubling to gather it back: each process sends
    2 (P-1)/P of the vector). Every process ends with the same bits, and a process's value is
    always added to its partner's as one pair, so the result is ((b0+b1)+(b2+b3))+... whatever
    the MPI library. Needs a power-of-two number of processes."""
    size, rank = comm.Get_size(), comm.Get_rank()
    if not _is_power_of_two(size):
        raise ValueError(f"tree_allreduce: expected a power-of-two number of processes, received {size}")
    if size == 1:
        return buf
    if scratch is None or len(scratch) < (len(buf) + 1) // 2:
        scratch = np.empty((len(buf) + 1) // 2, dtype=buf.dtype)
    lo, hi, d = 0, len(buf), 1
    ranges = []
    while d < size:  # reduce-scatter: keep one half, send the other, add what comes back
        partner, mid = rank ^ d, (lo + hi) // 2
        keep, give = ((mid, hi), (lo, mid)) if rank & d else ((lo, mid), (mid, hi))
        recv = scratch[: keep[1] - keep[0]]
        comm.Sendrecv(buf[give[0] : give[1]], dest=partner, sendtag=tag, recvbuf=recv, source=partner, recvtag=tag)
        np.add(buf[keep[0] : keep[1]], recv, out=buf[keep[0] : keep[1]])
        ranges.append((lo, hi))
        lo, hi = keep
        d <<= 1
    while ranges:  # allgather: the reverse path, sending the finished part
        d >>= 1
        partner = rank ^ d
        plo, phi = ranges.pop()
        mid = (plo + phi) // 2
        other = (plo, mid) if rank & d else (mid, phi)  # the half the partner kept
        comm.Sendrecv(
            buf[lo:hi], dest=partner, sendtag=tag, recvbuf=buf[other[0] : other[1]], source=partner, recvtag=tag
        )
        lo, hi = plo, phi
    return buf


class BucketReducer:
    """Completes the tree for one bucket at a time: reads this process's fragment sums
    (``step.fragments()``, views) over the bucket's range and writes the root's sum into
    fragment 0's buffer, the same bits on every process."""

    def __init__(self, comm: Any, tree: Any, fragments: list[np.ndarray], largest_bucket: int):
        self.comm, self.tree = comm, tree
        self.size, self.rank = comm.Get_size(), comm.Get_rank()
        self.fragments = fragments
        slots = [[i for i, (_, _, r) in enumerate(tree.fragments) if r == p] for p in range(self.size)]
        # A process's fragments are consecutive slots (the tree's leaves go by rank).
        self.slot_range = [(s[0], s[-1] + 1) for s in slots]
        if len(fragments) != len(slots[self.rank]):
            raise ValueError(
                f"BucketReducer: expected {len(slots[self.rank])} fragment buffers for process {self.rank}, "
                f"received {len(fragments)}"
            )
        self.combine = tree.combine
        self.aligned = tree.pairs_by_rank_bits
        chunk = -(-largest_bucket // self.size)
        if self.aligned:
            self.scratch = np.empty((largest_bucket + 1) // 2, dtype=np.float32)
        else:
            self.values = np.empty(len(tree.fragments) * chunk, dtype=np.float32)  # slot rows of a chunk
            self.packed = np.empty(len(fragments) * chunk, dtype=np.float32)

    def reduce(self, begin: int, end: int, tag: int = 0) -> None:
        out = self.fragments[0]
        if self.aligned:  # one process included
            tree_allreduce(self.comm, out[begin:end], self.scratch, tag)
            return
        size, rank, comm = self.size, self.rank, self.comm
        bounds = [begin + (end - begin) * c // size for c in range(size + 1)]
        mine = bounds[rank + 1] - bounds[rank]
        slots = len(self.tree.fragments)
        values = self.values[: slots * mine].reshape(slots, mine)
        lo, hi = self.slot_range[rank]
        for k, fragment in enumerate(self.fragments):
            values[lo + k] = fragment[bounds[rank] : bounds[rank + 1]]
        for shift in range(1, size):  # each chunk's fragments to the chunk's owner
            dest, source = (rank + shift) % size, (rank - shift) % size
            db, de = bounds[dest], bounds[dest + 1]
            if len(self.fragments) == 1:
                send = self.fragments[0][db:de]
            else:
                send = self.packed[: len(self.fragments) * (de - db)].reshape(len(self.fragments), de - db)
                for k, fragment in enumerate(self.fragments):
                    send[k] = fragment[db:de]
                send = send.reshape(-1)
            slo, shi = self.slot_range[source]
            recv = values[slo:shi].reshape(-1)
            comm.Sendrecv(send, dest=dest, sendtag=tag, recvbuf=recv, source=source, recvtag=tag)
        for a, b in self.combine:
            np.add(values[a], values[b], out=values[a])
        out[bounds[rank] : bounds[rank + 1]] = values[0]
        for shift in range(1, size):  # every finished chunk to every process
            dest, source = (rank + shift) % size, (rank - shift) % size
            comm.Sendrecv(
                out[bounds[rank] : bounds[rank + 1]],
                dest=dest,
                sendtag=tag,
                recvbuf=out[bounds[source] : bounds[source + 1]],
                source=source,
                recvtag=tag,
            )
