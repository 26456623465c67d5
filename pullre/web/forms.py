"""Forms of the admin pages: validation lives here so views only decide what to save."""

from __future__ import annotations

from datetime import time
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from pullre.accounts.user_accounts import MIN_PASSWORD_LENGTH
from pullre.environments import clone_urls
from pullre.identifiers import GITHUB_LOGIN, SCHEMA_NAME, split_full_name
from pullre.models import Approvers, Role, Schedule, Trust
from pullre.policies import office_hours
from pullre.servers import settings as server_settings
from pullre.servers.address import KEEP, check_app_port
from pullre.servers.registry import check_instance_id, check_staging_url


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def blank_to_none(value: str | None) -> str | None:
    """Optional text fields: empty means "not set" (NULL), while "0" stays "0"."""
    return value if value else None


_SCHEMA_MESSAGE = "letters, digits and underscores only, at most 64"


def _optional_id(value: Any) -> int | None:
    """A select's value: "" (and None) is "none chosen", anything else an id."""
    if value is None or value == "":
        return None
    return int(value)


def schedule_choices(schedules: list[Schedule], none_label: str) -> list[SelectChoice]:
    """Options of a schedule select: "none" first, then each by name with its hours."""
    return [SelectChoice("", none_label)] + [
        SelectChoice(str(s.id), f"{s.name}: {office_hours.describe(s)}") for s in schedules
    ]


def _schedule_field(description: str) -> SelectField:
    return SelectField(
        "Office hours", coerce=_optional_id, choices=[], default=None, description=description
    )


def _check_price(form: FlaskForm, field: Field) -> None:
    try:
        field.data = server_settings.check_hourly_price(field.data or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


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
    trust = SelectField(
        "Run without approval",
        choices=[
            SelectChoice(
                Trust.COLLABORATORS.value, "Collaborators: PRs from forks or outsiders wait"
            ),
            SelectChoice(Trust.EVERYONE.value, "Everyone, forks included"),
        ],
        default=Trust.COLLABORATORS.value,
        description="A PR from a fork, or by an author GitHub does not call owner, member or "
        "collaborator, gets no server, no database and runs nothing until its head commit is "
        "approved, unless this says everyone.",
    )
    approvers = SelectField(
        "Who may approve",
        choices=[
            SelectChoice(Approvers.ADMINS.value, "Admins of pullre"),
            SelectChoice(Approvers.MEMBERS.value, "Admins and members of pullre"),
        ],
        default=Approvers.ADMINS.value,
    )
    schedule_id = _schedule_field(
        "Outside these hours every environment of this repository sleeps (instance stopped, "
        "server and data kept) and its queued PRs wait; at opening time the ones that were "
        "ready are woken. None: always on."
    )
    clone_url = StringField(
        "Clone URL",
        validators=[Optional(), Length(max=clone_urls.LONGEST)],
        filters=[_strip],
        description="Where boxes fetch the code from. Blank: GitHub (with a GitHub App, boxes "
        "get a token reading this repository for under an hour). Else e.g. "
        "git@github.com:OWNER/NAME.git with a deploy key installed on the boxes, or a GitHub "
        "Enterprise host or mirror.",
    )

    def validate_clone_url(self, field: StringField) -> None:
        if field.data:
            try:
                clone_urls.check(field.data)
            except clone_urls.BadCloneUrl as exc:
                raise ValidationError(str(exc)) from None

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


class ScheduleForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Name", validators=[DataRequired(), Length(max=100)], filters=[_strip])
    time_zone = StringField(
        "Time zone",
        validators=[DataRequired()],
        filters=[_strip],
        default="UTC",
        description="An IANA name such as Europe/Berlin or America/New_York: times are "
        "wall-clock there, so 09:00 stays 09:00 across daylight-saving changes.",
        render_kw={"list": "time-zones", "autocomplete": "off"},
    )
    days = SelectMultipleField(
        "Days",
        coerce=int,
        choices=[SelectChoice(str(day), name) for day, name in office_hours.DAY_NAMES.items()],
        default=[1, 2, 3, 4, 5],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        description="The days on which the hours open.",
    )
    # InputRequired, not DataRequired: a mistyped time then says so instead of "required".
    opens_at = TimeField("Opens at", validators=[InputRequired()], default=time(9, 0))
    closes_at = TimeField(
        "Closes at",
        validators=[InputRequired()],
        default=time(18, 0),
        description="At or before the opening time: the hours run past midnight and close the "
        "next day (Fri 22:00 to 06:00 closes on Saturday morning).",
    )

    def validate_time_zone(self, field: StringField) -> None:
        error = office_hours.time_zone_error(field.data or "")
        if error is not None:
            raise ValidationError(error)

    def validate_days(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError("Choose at least one day.")


# Made before the settings fields so the outside-the-pool form shows it first.
_instance_id = StringField(
    "Instance id",
    validators=[DataRequired()],
    filters=[_strip],
    description="An EC2 instance pullre starts and stops by its office hours but never hands "
    "to a PR.",
)


class ServerSettingsForm(FlaskForm):  # type: ignore[misc]
    """Name, price and (outside the pool only) office hours of a server already known."""

    name = StringField(
        "Name", validators=[Length(max=100)], filters=[_strip], description="Shown in the UI."
    )
    hourly_price = StringField(
        "Hourly price",
        validators=[_check_price],
        filters=[_strip],
        description="Per running hour, in the currency of [cost] currency. Blank: the price "
        "of its instance type from [cost] instance_prices.",
    )
    schedule_id = _schedule_field(
        "Only for servers outside the pool (always-on test machines): the reconcile pass "
        "starts them at opening and stops them at closing. Pool servers follow their PRs "
        "instead (and their repository's office hours), so they take none."
    )


def _check_staging_url(form: FlaskForm, field: Field) -> None:
    """Not sent at all (a script posting only the price): unchanged, None; sent: checked."""
    if not field.raw_data:
        field.data = None
        return
    try:
        field.data = check_staging_url(field.data or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _check_app_port(form: FlaskForm, field: Field) -> None:
    """Not sent at all: unchanged (``KEEP``); sent blank: the box's default (None)."""
    if not field.raw_data:
        field.data = KEEP
        return
    try:
        field.data = check_app_port(str(field.data or ""))
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class PoolServerSettingsForm(ServerSettingsForm):
    """A pool server's settings also say where its app is reached; editable while held."""

    staging_url = StringField(
        "Staging URL",
        validators=[_check_staging_url],
        filters=[_strip],
        description="Where reviewers open the PR it serves, e.g. https://stage-1.example.com.",
    )
    app_port = StringField(
        "App port",
        validators=[_check_app_port],
        filters=[_strip],
        description="The port the app listens on on this server (what its staging URL is "
        "proxied to); a repository's .pullre.toml [deploy] port wins. Blank: the box's own "
        "[agent] port, else 8000. Sent to the agent with its next assignment and used by the "
        "next deploy there (redeploy the PR it serves to apply it now).",
    )


class OutsideServerForm(ServerSettingsForm):
    instance_id = _instance_id

    def validate_instance_id(self, field: StringField) -> None:
        try:
            check_instance_id(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
