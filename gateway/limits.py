"""The gateway's checks of what a caller sends, each naming the limit it enforces."""

from common.config import ClusterConfig
from common.errors import InvalidArgument


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
