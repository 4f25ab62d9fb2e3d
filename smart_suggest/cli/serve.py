"""CLI: ``smart-suggest serve ssh`` and ``serve web`` (the ``serve`` package, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

serve_app = typer.Typer(
    help="Serve the app to visitors over SSH or in a browser (a live demo).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on. Anything but loopback needs --authorized-keys or --open (ssh).",
    ),
]
# No envvar: a server must never pick up SMART_SUGGEST_DB (your own data) by accident.
ServeDbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Share this database with every visitor (default: a private demo copy each).",
        dir_okay=False,
        show_default=False,
    ),
]
DemoOption = Annotated[
    bool,
    typer.Option(
        "--demo",
        help="Each visitor gets a private copy of the demo data, deleted when they leave "
        "(the default).",
    ),
]
ReadOnlyOption = Annotated[
    bool,
    typer.Option("--read-only", help="Visitors can look but not change data."),
]


MaxSessionsOption = Annotated[
    int,
    typer.Option("--max-sessions", min=1, help="Concurrent sessions; more are told to retry."),
]
IdleTimeoutOption = Annotated[
    str,
    typer.Option(
        "--idle-timeout",
        help="Close a session after this long without a key (warned a minute before; 0 = never).",
    ),
]
MaxSessionOption = Annotated[
    str, typer.Option("--max-session", help="Longest session (0 = no limit).")
]
RateLimitOption = Annotated[
    int, typer.Option("--rate-limit", min=1, help="New sessions per address per minute.")
]
LogJsonOption = Annotated[
    bool, typer.Option("--log-json", help="Log one JSON object per line (stderr).")
]


def _source(db: Path | None, demo: bool) -> None:
    from smart_suggest.errors import InputError

    if db is not None and demo:
        raise InputError("--db and --demo exclude each other: --db shares one database")


@serve_app.command("ssh")
def ssh(
    host: HostOption = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")
    ] = 2222,
    db: ServeDbOption = None,
    demo: DemoOption = False,
    read_only: ReadOnlyOption = False,
    max_sessions: MaxSessionsOption = 20,
    idle_timeout: IdleTimeoutOption = "15m",
    max_session: MaxSessionOption = "2h",
    authorized_keys: Annotated[
        Path | None,
        typer.Option(
            "--authorized-keys",
            help="Public-key login: only these keys may connect.",
            exists=False,
            dir_okay=False,
        ),
    ] = None,
    open_: Annotated[
        bool,
        typer.Option(
            "--open", help="Anyone who can reach the address may connect (a public demo)."
        ),
    ] = False,
    rate_limit: RateLimitOption = 10,
    host_key: Annotated[
        Path | None,
        typer.Option(
            "--host-key",
            help="Host key file (default: ssh_host_ed25519_key in your "
            "data directory, created on first start).",
            dir_okay=False,
        ),
    ] = None,
    log_json: LogJsonOption = False,
    zygote: Annotated[
        bool,
        typer.Option(
            "--zygote/--no-zygote",
            help="Fork each visitor's app from a process that imported it once (faster "
            "connects); --no-zygote starts a new interpreter per visitor.",
            hidden=True,
        ),
    ] = True,
) -> None:
    """Serve the app over SSH: visitors type `ssh -p PORT demo@HOST` and get the workbench.

    Only the app is served (no shell, commands, SFTP or forwarding). One line per connect
    and disconnect on stderr. ctrl+c or SIGTERM tells visitors, closes and exits 0.
    """
    _source(db, demo)
    from serve.common import parse_duration
    from serve.ssh import SshOptions, run_ssh

    options = SshOptions(
        host=host,
        port=port,
        db=db,
        demo=db is None,
        read_only=read_only,
        max_sessions=max_sessions,
        idle_timeout=parse_duration(idle_timeout, "--idle-timeout"),
        max_session=parse_duration(max_session, "--max-session"),
        authorized_keys=authorized_keys,
        open=open_,
        log_json=log_json,
        host_key=host_key,
        rate_limit=rate_limit,
        zygote=zygote,
    )
    raise typer.Exit(run_ssh(options))


@serve_app.command("web")
def web(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8000,
    db: ServeDbOption = None,
    demo: DemoOption = False,
    read_only: ReadOnlyOption = False,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="The URL visitors use, if a proxy is in front."),
    ] = None,
    open_: Annotated[
        bool,
        typer.Option("--open", help="Allow a non-loopback --host (there is no login)."),
    ] = False,
    max_sessions: MaxSessionsOption = 20,
    idle_timeout: IdleTimeoutOption = "15m",
    max_session: MaxSessionOption = "2h",
    rate_limit: RateLimitOption = 10,
    log_json: LogJsonOption = False,
) -> None:
    """Serve the app in the browser (textual-serve): each visitor gets their own app.

    The same limits as serve ssh; one line per connect and disconnect on stderr.
    """
    _source(db, demo)
    from serve.common import parse_duration
    from serve.web import WebOptions, run_web

    raise typer.Exit(
        run_web(
            WebOptions(
                host=host,
                port=port,
                db=db,
                read_only=read_only,
                public_url=public_url,
                open=open_,
                max_sessions=max_sessions,
                idle_timeout=parse_duration(idle_timeout, "--idle-timeout"),
                max_session=parse_duration(max_session, "--max-session"),
                rate_limit=rate_limit,
                log_json=log_json,
            )
        )
    )


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
