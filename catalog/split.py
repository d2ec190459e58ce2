"""The fixed held-out split: about one item in ten, never trained on by any model."""

import zlib


def is_held_out(item_id: str) -> bool:
    """True for the items kept out of training (`crc32(id) % 10 == 0`, the dataset README's rule).

    Args:
        item_id: the item's id as its decimal string.
    """
    return zlib.crc32(item_id.encode()) % 10 == 0
