"""The product's version: one number for /healthz, the OpenAPI document, error reports and
CHANGELOG.md (whose newest section is this release)."""

VERSION = "1.0.0"
