"""`minyi staff add|list|disable|passwd`: staff accounts from the command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import unicodedata
from collections.abc import Awaitable, Callable

from bot.app.settings import Settings
from bot.app.wiring import prepare_schema
from storage.db import Database
from storage.models import StaffAccount
from storage.signin_throttle import clear, user_key
from storage.staff import ROLES, StaffAccounts, StaffError, check_password, hash_password

PASSWORD_VARIABLE = "MINYI_STAFF_PASSWORD"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = commands.add_parser("staff", help="staff accounts for the desk")
    actions = staff.add_subparsers(dest="staff_command", required=True)
    add = actions.add_parser("add", help=f"create an account (password from {PASSWORD_VARIABLE})")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="显示名: the name shown on case timelines")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--department", default="", help="department code; none = every department")
    add.add_argument("--wecom", default="", help="the person's WeCom userid")
    actions.add_parser("list", help="list accounts")
    disable = actions.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    passwd = actions.add_parser("passwd", help="set a new password and end the account's sessions")
    passwd.add_argument("username")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(settings, args))
    except StaffError as exc:
        print(f"minyi: {exc}", file=sys.stderr)
        return 2


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    command: Callable[[StaffAccounts, argparse.Namespace], Awaitable[str]] = {
        "add": _add,
        "list": _list,
        "disable": _disable,
        "passwd": _passwd,
    }[args.staff_command]
    db = Database(settings.database_url)
    try:
        await prepare_schema(db)
        async with db.session() as session, session.begin():
            print(await command(StaffAccounts(session), args))
    finally:
        await db.dispose()
    return 0


def read_password() -> str:
    """From MINYI_STAFF_PASSWORD (scripts, tests), else typed twice without echo."""
    given = os.environ.get(PASSWORD_VARIABLE)
    if given is not None:
        return check_password(given)
    if not sys.stdin.isatty():
        raise StaffError(f"no terminal to ask the password on; set {PASSWORD_VARIABLE}")
    first = check_password(getpass.getpass("Password: "))
    if getpass.getpass("Again: ") != first:
        raise StaffError("the two passwords differ; nothing was changed")
    return first


async def _add(accounts: StaffAccounts, args: argparse.Namespace) -> str:
    if await accounts.by_username(args.username) is not None:
        raise StaffError(f"the username {args.username.strip().lower()} is taken")
    account = await accounts.add(
        args.username,
        args.name,
        args.role,
        await hash_password(read_password()),
        department=args.department,
        wecom_userid=args.wecom,
    )
    return f"added {account.username} ({account.display_name}, {account.role})"


async def _list(accounts: StaffAccounts, args: argparse.Namespace) -> str:
    rows = [("username", "name", "role", "department", "wecom", "state")]
    for a in await accounts.all():
        state = "disabled" if a.disabled_at else "active"
        rows.append(
            (a.username, a.display_name, a.role, a.department or "*", a.wecom_userid or "", state)
        )
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v + " " * (w - _width(v)) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    )


def _width(text: str) -> int:
    """Columns on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


async def _known(accounts: StaffAccounts, username: str) -> StaffAccount:
    account = await accounts.by_username(username)
    if account is None:
        raise StaffError(f"no account {username.strip().lower()}")
    return account


async def _disable(accounts: StaffAccounts, args: argparse.Namespace) -> str:
    account = await _known(accounts, args.username)
    await accounts.disable(account)
    return f"disabled {account.username}; their sessions are ended"


async def _passwd(accounts: StaffAccounts, args: argparse.Namespace) -> str:
    account = await _known(accounts, args.username)
    await accounts.set_password(account, await hash_password(read_password()))
    await clear(accounts.session, user_key(account.username))  # and lifts a lockout
    return f"new password set for {account.username}; their sessions are ended"
