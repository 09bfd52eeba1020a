"""``nudge users …``: web UI accounts and REST API tokens.

A password is read from the terminal without echo (asked twice), or from standard input when it is not
a terminal (``--password-stdin``, for scripts); it never appears in the command line, the output or logs.
A token's secret is printed once, at creation.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from core.clock import utcnow
from core.models import Role
from nudge.commands.common import clean_errors, unit_of_work
from web import accounts

app = typer.Typer(help="Web UI users, their roles and API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="REST API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

Username = Annotated[str, typer.Argument(help="Lowercase letters, digits and . _ @ -")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line) instead.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command()
def create(
    username: Username,
    role: Annotated[Role, typer.Option(help="viewer, marketer, approver or admin.")] = Role.MARKETER,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; the password is prompted for (or read from standard input)."""
    password = _password(password_stdin)
    with clean_errors(), unit_of_work() as session:
        user = accounts.create_user(session, username, password, role, now=utcnow())
        typer.echo(f"created {user.role.value} {user.username!r}")


@app.command("list")
def list_() -> None:
    """Users, their roles and whether they are active or locked."""
    with unit_of_work() as session:
        users = accounts.list_users(session)
        if not users:
            typer.echo("no users yet: nudge users create USERNAME --role admin")
        for user in users:
            status = "active" if user.active else "deactivated"
            typer.echo(f"{user.username}\t{user.role.value}\t{status}")


@app.command("set-password")
def set_password(username: Username, password_stdin: PasswordStdin = False) -> None:
    """Change a password (also unlocks the account and signs it out everywhere)."""
    password = _password(password_stdin)
    with clean_errors(), unit_of_work() as session:
        accounts.set_password(session, accounts.get_user(session, username), password)
        typer.echo(f"changed the password of {username!r}")


@app.command("set-role")
def set_role(username: Username, role: Annotated[Role, typer.Argument(help="The new role.")]) -> None:
    with clean_errors(), unit_of_work() as session:
        accounts.set_role(accounts.get_user(session, username), role)
        typer.echo(f"{username!r} is now a {role.value}")


@app.command()
def deactivate(username: Username) -> None:
    """Refuse the user's logins, sessions and tokens from now on (history is kept)."""
    with clean_errors(), unit_of_work() as session:
        accounts.set_active(session, accounts.get_user(session, username), False)
        typer.echo(f"deactivated {username!r}")


@token_app.command("create")
def create_token(
    username: Username, name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'ci'.")]
) -> None:
    """Create an API token acting as the user and print it — the only time it is shown."""
    with clean_errors(), unit_of_work() as session:
        new = accounts.create_api_token(session, accounts.get_user(session, username), name, now=utcnow())
        typer.echo(f"created token {new.token.name!r} for {username!r}")
        typer.echo(f"token: {new.secret}")
    typer.secho("Store it now: it is shown only this once; Nudge keeps only its hash.", fg="yellow", err=True)


@token_app.command("revoke")
def revoke_token(token_id: Annotated[int, typer.Argument(help="The id shown by 'nudge users token list'.")]) -> None:
    with clean_errors(), unit_of_work() as session:
        token = accounts.revoke_api_token(session, token_id, now=utcnow())
        typer.echo(f"revoked token {token.id} ({token.name!r})")


@token_app.command("list")
def list_tokens() -> None:
    """Tokens (their start only), owners and status."""
    with unit_of_work() as session:
        for token, owner in accounts.list_api_tokens(session):
            status = "revoked" if token.revoked_at else "active"
            typer.echo(f"{token.id}\t{owner}\t{token.name}\t{token.prefix}…\t{status}")
