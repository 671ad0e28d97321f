"""The REST API under ``/api/v1``: one router per noun, every route a few lines over the Context facade."""

from flowforge.api.app import create_app

__all__ = ["create_app"]
