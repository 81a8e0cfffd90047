"""StateStoreDatabase: the PostgreSQL database of run records, with its password kept secret."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator
from sqlalchemy.engine import make_url


class StateStoreDatabase(Block):
    """The run-record store: a SQLAlchemy URL without its password, and the password."""

    _block_type_name = "retrain state store"
    _block_type_slug = "retrain-state-store"
    _description = "The database of retrain's run records (PostgreSQL in production)."

    url: str = Field(
        description="SQLAlchemy URL without the password, e.g. "
        "postgresql+psycopg://retrain@db.internal:5432/retrain.")
    password: SecretStr | None = Field(
        default=None, description="The database user's password; empty for none (e.g. "
        "peer or certificate authentication).")

    @field_validator("url")
    @classmethod
    def _no_password_in_the_url(cls, value: str) -> str:
        try:
            parsed = make_url(value)
        except Exception:  # sqlalchemy raises ArgumentError for a malformed URL
            raise ValueError("url is not a SQLAlchemy URL (dialect+driver://user@host/db)") from None
        if parsed.password is not None:
            raise ValueError("url holds a password; put it in the password field")
        return value

    def sqlalchemy_url(self) -> str:
        """The URL with the password in, for the engine (never log it)."""
        url = make_url(self.url)
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url.render_as_string(hide_password=False)
