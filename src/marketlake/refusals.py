"""What an AWS SDK error means to a run: a refusal that no retry and no other symbol gets past
(credentials, access, a KMS key, a missing bucket), or anything else. Duck-typed on botocore's
error shapes, so the library imports without boto3 (the local CLI has none)."""

from __future__ import annotations

# By error code: S3's error list and the codes every AWS API shares. S3 answers a KMS key it
# cannot use with KMS.* codes (KMS.NotFoundException, KMS.DisabledException,
# KMS.KMSInvalidStateException), or with AccessDenied naming kms:... when the key policy
# denies. A HEAD answer has no body, so a denied HEAD is a bare "403".
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "TokenRefreshRequired",
    }
)
ACCESS_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "AccountProblem", "403"}
)
KMS_CODES = frozenset(
    {
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "DecryptionFailure",  # Secrets Manager: the secret's KMS key would not decrypt it
    }
)
MISSING_CODES = frozenset({"NoSuchBucket"})
# botocore's own errors, raised before any request goes out.
CREDENTIAL_ERRORS = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "TokenRetrievalError",
        "SSOError",
    }
)


def error_of(exc: BaseException) -> tuple[str, str]:
    """(code, first line of the message) of a botocore ClientError; ("", "") otherwise."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", ""
    error = response.get("Error") or {}
    return str(error.get("Code") or ""), (str(error.get("Message") or "").splitlines() or [""])[0]


def refusal(exc: BaseException) -> str | None:
    """The kind of refusal `exc` is: "credentials", "kms", "access" or "missing" (a bucket);
    None for anything else (a throttle, a conflict, a 500, a missing object)."""
    if any(cls.__name__ in CREDENTIAL_ERRORS for cls in type(exc).__mro__):
        return "credentials"
    code, message = error_of(exc)
    if code.startswith("KMS.") or code in KMS_CODES:
        return "kms"
    if code in ACCESS_CODES:
        return "kms" if "kms:" in message or "KMS" in message else "access"
    if code in CREDENTIAL_CODES:
        return "credentials"
    if code in MISSING_CODES:
        return "missing"
    return None


def error_summary(exc: BaseException) -> str:
    """One line of what AWS answered: `PutObject refused (AccessDenied: Access Denied)`."""
    code, message = error_of(exc)
    if not code:
        return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    operation = getattr(exc, "operation_name", "") or "the call"
    return (
        f"{operation} refused ({code}: {message})" if message else f"{operation} refused ({code})"
    )
