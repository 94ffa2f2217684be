"""Flask-WTF forms: every POST carries a CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from correspondence.models.staffer import DEFAULT_ROLE, STAFF_ROLES


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Sign in")


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password (at least 12 characters)", validators=[DataRequired(), Length(12, 1024)])
    confirm = PasswordField("New password again", validators=[
        DataRequired(message="type the new password a second time"),
        EqualTo("new", message="the two new passwords are not the same; type them again")])
    submit = SubmitField("Change password")


class CodeForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(max=40)])
    submit = SubmitField("Continue")


class ActionForm(FlaskForm):
    """A bare form: only the CSRF token, for buttons that post a fixed action."""

    value = HiddenField()


class StaffForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    # The address is checked by correspondence.services.staff.staff_email (syntax only, so an office's
    # own domains such as mailroom.local are accepted), which names what is wrong.
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    # Least privileged first, and chosen unless the admin picks another.
    role = SelectField("Role", choices=[(r.value, r.value.title()) for r in STAFF_ROLES], default=DEFAULT_ROLE.value)
    submit = SubmitField("Create account")
