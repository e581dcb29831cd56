"""The REST API (`/api/v1`) that the CLI and scripts use."""
