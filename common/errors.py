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
    └── NoAnswer                 UNAVAILABLE        (a dependency gave no answer, right or wrong)
        ├── Unavailable          UNAVAILABLE        (it could not be reached, or is not ready)
        ├── DeadlineExceeded     DEADLINE_EXCEEDED  (it did not answer in time)
        ├── Cancelled            CANCELLED          (the call was called off)
        └── ResourceExhausted    RESOURCE_EXHAUSTED (it is full: shedding calls, or a limit)

The split is the one httpx makes between a transport's failures and a server's answers: a
`NoAnswer` from a shard makes a search partial (the other shards' answers still stand), while
any other error is the dependency's verdict on the request and goes back to the caller with
its code. An error read off another service keeps that service's status code, even one with no
class here (`code` is then set on the instance).

Core modules raise these; they never import grpc. The `code` is a status-code name so that
this module stays free of grpc too.
"""

import dataclasses
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

    @classmethod
    def of(cls, index: int, item_id: str, error: "VisualSearchError") -> "ItemFailure":
        """The failure of item `index` (`item_id`) by `error`, with the error's code."""
        return cls(index, item_id, error.code, str(error))

    def at(self, index: int, item_id: str | None = None) -> "ItemFailure":
        """The same failure, for the item at `index` of another batch (and `item_id`)."""
        return dataclasses.replace(
            self, index=index, item_id=self.item_id if item_id is None else item_id
        )


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


class NoAnswer(VisualSearchError):
    """The family of failures to get an answer at all, as against an answer that refuses."""

    code = "UNAVAILABLE"


class Unavailable(NoAnswer):
    code = "UNAVAILABLE"


class DeadlineExceeded(NoAnswer):
    code = "DEADLINE_EXCEEDED"


class Cancelled(NoAnswer):
    code = "CANCELLED"


class ResourceExhausted(NoAnswer):
    code = "RESOURCE_EXHAUSTED"
