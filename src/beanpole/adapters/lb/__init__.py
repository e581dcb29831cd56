"""HAProxy: the process and its runtime API (`haproxy`), the per-request stream (`requests`)."""
