"""The project's exceptions, each mapped to one gRPC status code by the serve loop.

    VisualSearchError            INTERNAL
    ├── InvalidArgument          INVALID_ARGUMENT   (bad input from a caller)
    ├── NotFound                 NOT_FOUND          (an id or path the cluster does not know)
    ├── FailedPrecondition       FAILED_PRECONDITION (valid input the current state refuses)
    ├── AlreadyExists            ALREADY_EXISTS
    ├── Aborted                  ABORTED            (valid input a concurrent change overtook)
    ├── AccessDenied             PERMISSION_DENIED  (the caller may not make this call)
    │   ├── Unauthenticated      UNAUTHENTICATED    (no token, or one the cluster does not know)
    │   └── PermissionDenied     PERMISSION_DENIED  (a known caller without the method's role)
    └── Unavailable              UNAVAILABLE        (a dependency did not answer)

Core modules raise these; they never import grpc. The `code` is a status-code name so that
this module stays free of grpc too.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ItemFailure:
    """Why one item of a batch was refused; the other items of the batch go on.

    `index` is the item's position in the call, `code` a status-code name as above.
    """

    index: int
    item_id: str
    code: str
    message: str


class VisualSearchError(Exception):
    """Base of every error the cluster reports to a caller."""

    code = "INTERNAL"


class InvalidArgument(VisualSearchError):
    code = "INVALID_ARGUMENT"


class NotFound(VisualSearchError):
    code = "NOT_FOUND"


class FailedPrecondition(VisualSearchError):
    code = "FAILED_PRECONDITION"


class AlreadyExists(VisualSearchError):
    code = "ALREADY_EXISTS"


class Aborted(VisualSearchError):
    """A write based on a version that a concurrent change has replaced: read again, retry."""

    code = "ABORTED"


class AccessDenied(VisualSearchError):
    """The family of refusals by who the caller is, not by what it asked."""

    code = "PERMISSION_DENIED"


class Unauthenticated(AccessDenied):
    code = "UNAUTHENTICATED"


class PermissionDenied(AccessDenied):
    code = "PERMISSION_DENIED"


class Unavailable(VisualSearchError):
    code = "UNAVAILABLE"
