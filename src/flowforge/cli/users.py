"""``flowforge users ...``: accounts and API tokens for the API and web UI."""


import sys
from typing import Annotated

import typer

from flowforge.cli.common import _context

users_app = typer.Typer(help="Users and API tokens (roles: admin, editor, viewer).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="User name.")]


@users_app.command("create")
def create(name: NameArg,
           role: Annotated[str, typer.Option(help="admin, editor or viewer")] = "viewer",
           password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False
           ) -> None:
    """Create a user; the password is prompted for (or read from stdin), never given on the command line."""
    from flowforge.cli import output

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _context() as ctx:
        user = ctx.users.create_user(name, password, role)  # type: ignore[arg-type]
        output.info(f"created user '{user.username}' ({user.role})")


@users_app.command("list")
def list_() -> None:
    """Users with role and state."""
    from flowforge.cli import output

    with _context() as ctx:
        rows = [{"user": u.username, "role": u.role, "created": f"{u.created_at:%Y-%m-%d %H:%M}",
                 "state": "disabled" if u.disabled else "active"} for u in ctx.users.list_users()]
        output.records(rows, ["user", "role", "created", "state"], title="Users")


@users_app.command("token")
def token(name: NameArg,
          label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli") -> None:
    """Create an API token for a user and print it once (only its hash is stored)."""
    from flowforge.cli import output

    with _context() as ctx:
        value = ctx.users.create_token(name, label)
    output.info(value)


@users_app.command("role")
def role(name: NameArg, new_role: Annotated[str, typer.Argument(help="admin, editor or viewer")]) -> None:
    """Change a user's role."""
    from flowforge.cli import output

    with _context() as ctx:
        user = ctx.users.set_role(name, new_role)  # type: ignore[arg-type]
        output.info(f"'{user.username}' is now {user.role}")


@users_app.command("disable")
def disable(name: NameArg, enable: Annotated[bool, typer.Option("--enable", help="Enable again.")] = False) -> None:
    """Disable (or re-enable) a user; its tokens and sessions stop working."""
    from flowforge.cli import output

    with _context() as ctx:
        user = ctx.users.disable(name, disabled=not enable)
        output.info(f"'{user.username}' is {'disabled' if user.disabled else 'enabled'}")


@users_app.command("passwd")
def passwd(name: NameArg,
           password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False
           ) -> None:
    """Set a user's password (prompted for, or read from stdin); their open sessions end and a sign-in
    lock-out after failed attempts is lifted."""
    from flowforge.cli import output

    password = sys.stdin.readline().rstrip("\n") if password_stdin else \
        typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with _context() as ctx:
        user = ctx.users.set_password(name, password)
        output.info(f"password of '{user.username}' changed; their sessions were ended")
