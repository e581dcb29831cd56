"""The API request an operation runs for.

Elastic Beanstalk's clients follow an operation by the request id of the call that started
it (`eb deploy` asks for the events carrying it), so every event and operation records the
request in whose context it happens. A face sets it for the duration of a call; tasks
started from there (an operation's flow) inherit it, as asyncio copies the context.
"""

from __future__ import annotations

from contextvars import ContextVar

current_request: ContextVar[str | None] = ContextVar("current_request", default=None)
