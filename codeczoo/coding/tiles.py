"""Tiles of a large image: bounded memory for codecs whose cost grows with the image size.

A padded image (a multiple of the network's downsampling on both sides) is cut into square tiles
of ``tile`` pixels in raster order; the last row and column of tiles are smaller, still multiples
of the downsampling. Tiles of equal shape are coded together, ``max_batch`` at a time.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

Tile = tuple[int, int, int, int]  # top, left, height, width


def pad_to_multiple(values: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Replicate-pad a 2-D array at the bottom and right to multiples of ``multiple``."""
    pad_bottom, pad_right = (-values.shape[0]) % multiple, (-values.shape[1]) % multiple
    if pad_bottom or pad_right:
        values = np.pad(values, ((0, pad_bottom), (0, pad_right)), mode="edge")
    return values, (pad_bottom, pad_right)


def grid_shape(height: int, width: int, tile: int) -> tuple[int, int]:
    """Rows and columns of tiles covering ``height`` x ``width``."""
    return -(-height // tile), -(-width // tile)


def tile_grid(height: int, width: int, tile: int) -> list[Tile]:
    """Tiles (top, left, h, w) of a ``height`` x ``width`` image, raster order."""
    return [(top, left, min(tile, height - top), min(tile, width - left))
            for top in range(0, height, tile) for left in range(0, width, tile)]


def same_shape_batches(tiles: list[Tile], max_batch: int) -> Iterator[list[int]]:
    """Consecutive runs of same-shaped tiles, at most ``max_batch`` long (index lists)."""
    run: list[int] = []
    for i, tile in enumerate(tiles):
        if run and (len(run) == max_batch or tiles[run[0]][2:] != tile[2:]):
            yield run
            run = []
        run.append(i)
    if run:
        yield run
