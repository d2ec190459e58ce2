"""The gateway's checks of what a caller sends, each naming the limit it enforces."""

from common.config import ClusterConfig
from common.errors import InvalidArgument


def checked_k(k: int, config: ClusterConfig) -> int:
    """The neighbours a search returns: `k`, or gateway.default_k for 0.

    Raises:
        InvalidArgument: k outside 0..gateway.max_k.
    """
    gateway = config.gateway
    if k < 0 or k > gateway.max_k:
        raise InvalidArgument(f"k={k} is outside 0..{gateway.max_k} (0 means {gateway.default_k})")
    return k or gateway.default_k


def check_image(image: bytes, config: ClusterConfig) -> None:
    """Refuses an empty image, or one over encoder.max_image_bytes, before it is sent on.

    Raises:
        InvalidArgument: naming the size and the limit.
    """
    limit = config.encoder.max_image_bytes
    if not image:
        raise InvalidArgument("image is empty")
    if len(image) > limit:
        raise InvalidArgument(
            f"image is {len(image):,} bytes; the limit is encoder.max_image_bytes={limit:,}"
        )


def check_count(count: int, what: str, limit: int, key: str) -> None:
    """Refuses a call with no `what` or more than `limit` of them (config `key`).

    Raises:
        InvalidArgument: naming the count and the limit.
    """
    if count == 0:
        raise InvalidArgument(f"no {what}")
    if count > limit:
        raise InvalidArgument(f"{count} {what} in one call; the limit is {key}={limit}")
