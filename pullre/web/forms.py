"""Forms of the admin pages: validation lives here so views only decide what to save."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from pullre.accounts import MIN_PASSWORD_LENGTH
from pullre.identifiers import GITHUB_LOGIN, SCHEMA_NAME, split_full_name
from pullre.models import Role


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def blank_to_none(value: str | None) -> str | None:
    """Optional text fields: empty means "not set" (NULL), while "0" stays "0"."""
    return value if value else None


_SCHEMA_MESSAGE = "letters, digits and underscores only, at most 64"


class LoginForm(FlaskForm):  # type: ignore[misc]
    username = StringField("Username", validators=[DataRequired()], filters=[_strip])
    password = PasswordField("Password", validators=[DataRequired()])


class RepositoryForm(FlaskForm):  # type: ignore[misc]
    full_name = StringField(
        "Repository",
        validators=[DataRequired()],
        filters=[_strip],
        description="OWNER/NAME as on GitHub",
    )
    base_schema = StringField(
        "Base schema",
        validators=[Optional(), Regexp(SCHEMA_NAME, message=_SCHEMA_MESSAGE)],
        filters=[_strip],
        description="The MySQL schema each PR's schema is cloned from (unless its author has "
        "one of their own).",
    )
    required_label = StringField(
        "Required label",
        validators=[Optional(), Length(max=100)],
        filters=[_strip],
        description="Only PRs carrying this label get an environment. Blank: every PR.",
    )
    enabled = BooleanField("Enabled", default=True)

    def validate_full_name(self, field: StringField) -> None:
        try:
            split_full_name(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class GithubUserForm(FlaskForm):  # type: ignore[misc]
    login = StringField(
        "GitHub login",
        validators=[DataRequired(), Regexp(GITHUB_LOGIN, message="not a valid GitHub login")],
        filters=[_strip],
    )
    source_schema = StringField(
        "Source schema",
        validators=[DataRequired(), Regexp(SCHEMA_NAME, message=_SCHEMA_MESSAGE)],
        filters=[_strip],
        description="Schema cloned for this person's PRs instead of the repository's base.",
    )


class UserForm(FlaskForm):  # type: ignore[misc]
    username = StringField(
        "Username", validators=[DataRequired(), Length(max=100)], filters=[_strip]
    )
    role = SelectField("Role", choices=[SelectChoice(r.value) for r in Role], default="member")
    active = BooleanField("Active", default=True)
    password = PasswordField(
        "Password",
        validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH)],
        description=f"At least {MIN_PASSWORD_LENGTH} characters. When editing, blank keeps "
        "the current one.",
    )
