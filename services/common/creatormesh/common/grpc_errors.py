"""Map exceptions to gRPC statuses: domain errors to their codes, anything else to
INTERNAL with the traceback logged. Nothing reaches the client as UNKNOWN.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from creatormesh.common import errors

log = logging.getLogger("creatormesh.grpc")

_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str, bytes | None]:
    """(code, message, serialized google.rpc.Status or None) for an exception."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code, str(exc), _details(exc, code)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see server logs", None


def _details(exc: BaseException, code: grpc.StatusCode) -> bytes | None:
    """A google.rpc.BadRequest with the field violation, for clients that read rich errors."""
    if not isinstance(exc, errors.InvalidArgument):
        return None
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.description)]
        )
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(exc), details=[detail])
    return bytes(status.SerializeToString())


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs carried by an INVALID_ARGUMENT error, if any."""
    out: list[tuple[str, str]] = []
    for value in error.trailing_metadata().get_all("grpc-status-details-bin"):
        if isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    out.extend((v.field, v.description) for v in bad.field_violations)
    return out
