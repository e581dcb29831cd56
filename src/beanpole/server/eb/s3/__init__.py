"""The S3 face of the bundle store: the calls Terraform (`aws_s3_bucket`, `aws_s3_object`),
boto3 and the `eb` CLI make to upload application bundles, answered with S3's own XML and
error shape (docs/s3.md lists them). Path-style addressing only: ``/bucket`` and
``/bucket/key``.

The dispatcher (`app.py`) has checked the request's SigV4 signature and hands over the
``x-amz-content-sha256`` value it covered: a hex sha256 is checked against the body before
anything is stored; ``UNSIGNED-PAYLOAD`` is not checked; ``STREAMING-*`` bodies arrive in
aws-chunked framing, decoded here.

Every answer is one `Response` with its body (or a `FileResponse` for a GET) and carries an
``x-amz-request-id``. A call this store does not implement answers 501 ``NotImplemented``,
which SDKs do not retry, never a 500.

The package, one module per concept, imports one way only: `dispatch` routes to the handlers
(`buckets`, `listing`, `objects`, `multipart`), which build on `bodies` and `call`, and on
`xml`, `chunked` and `errors` at the bottom.
"""

from beanpole.server.eb.s3.chunked import AwsChunked
from beanpole.server.eb.s3.dispatch import handle

__all__ = ["AwsChunked", "handle"]
