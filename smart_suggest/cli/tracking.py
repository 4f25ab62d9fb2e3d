"""CLI: users, items, interactions, history and profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smart_suggest.cli._common import (
    DbOption,
    JsonOption,
    console,
    emit_json,
    fmt_time,
    make_table,
    open_db,
    safe,
    say,
)

if TYPE_CHECKING:
    from smart_suggest.tracking import Interaction, Profile

users_app = typer.Typer(help="Add, list and show users.", no_args_is_help=True)
items_app = typer.Typer(help="Add, list and show items of the catalogue.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="User id or username.", show_default=False)]
ItemArg = Annotated[str, typer.Argument(help="Item id.", show_default=False)]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most N rows.")]


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Unique username.", show_default=False)],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Add a user."""
    from smart_suggest import tracking

    with open_db(db) as store:
        user = tracking.add_user(store, username)
    if json:
        emit_json(user.to_dict())
    else:
        console.print("Added user ", safe(user.username), f" (id {user.id})", sep="")


@users_app.command("list")
def users_list(
    db: DbOption = None,
    json: JsonOption = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Only names containing TEXT.")
    ] = None,
) -> None:
    """List users."""
    from smart_suggest import tracking

    with open_db(db) as store:
        if search:
            users = tracking.search_users(store, search, limit=limit or 200)
        else:
            users = tracking.list_users(store, limit=limit)
    if json:
        emit_json([u.to_dict() for u in users])
        return
    table = make_table(f"Users ({len(users)})", [("id", "right"), "username", "created"])
    for u in users:
        table.add_row(str(u.id), safe(u.username), fmt_time(u.created_at))
    console.print(table)


@users_app.command("show")
def users_show(
    user: UserArg,
    db: DbOption = None,
    json: JsonOption = False,
    limit: LimitOption = 10,
) -> None:
    """Show a user's profile (actions, categories, top items) and recent history."""
    from smart_suggest import tracking

    with open_db(db) as store:
        prof = tracking.profile(store, user)
        hist = tracking.history(store, prof.user.id, limit=limit)
    if json:
        emit_json({"profile": prof.to_dict(), "history": [h.to_dict() for h in hist]})
        return
    _print_profile(prof)
    _print_history(hist, f"Recent history (newest first, {len(hist)} shown)")


def _print_profile(prof: Profile) -> None:
    u = prof.user
    console.print("User ", safe(u.username, style="bold"), f"  id {u.id}", sep="")
    if prof.attributes:
        console.print(
            safe(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in prof.attributes.items()))
        )
    actions = ", ".join(f"{a} {n}" for a, n in prof.actions.items())
    console.print(f"Interactions: {prof.total} ({actions})")
    if prof.categories:
        cats = make_table(
            "Preferred categories",
            ["category", ("interactions", "right"), ("weighted score", "right")],
        )
        for c in prof.categories:
            cats.add_row(safe(c.category), str(c.interactions), str(c.weighted_score))
        console.print(cats)
    if prof.top_items:
        top = make_table(
            "Top items", [("id", "right"), "item", "category", ("weighted score", "right")]
        )
        for i in prof.top_items:
            top.add_row(str(i.item_id), safe(i.name), safe(i.category), str(i.weighted_score))
        console.print(top)


def _print_history(hist: list[Interaction], title: str) -> None:
    table = make_table(title, ["when (UTC)", "action", ("item", "right"), "name", "category"])
    for h in hist:
        table.add_row(fmt_time(h.ts), h.action, str(h.item_id), safe(h.item_name), safe(h.category))
    console.print(table)


@items_app.command("add")
def items_add(
    name: Annotated[str, typer.Argument(help="Item name.", show_default=False)],
    category: Annotated[
        list[str],
        typer.Option(
            "--category",
            "-c",
            help="Category, e.g. books; repeat for several (the first is the main one).",
            show_default=False,
        ),
    ],
    description: Annotated[
        str, typer.Option("--description", "-d", help="Free text used by content-based v2.")
    ] = "",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Add an item (visible to every strategy at once)."""
    from smart_suggest import tracking

    with open_db(db) as store:
        item = tracking.add_item(store, name, category, description)
    if json:
        emit_json(item.to_dict())
    else:
        console.print("Added item ", safe(item.name), f" (id {item.id})", sep="")


@items_app.command("list")
def items_list(
    db: DbOption = None,
    json: JsonOption = False,
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="Only items in this category.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N.")] = None,
) -> None:
    """List items."""
    from smart_suggest import tracking

    with open_db(db) as store:
        items = tracking.list_items(store, category=category, limit=limit)
    if json:
        emit_json([i.to_dict() for i in items])
        return
    table = make_table(
        f"Items ({len(items)})", [("id", "right"), "name", "categories", "description"]
    )
    for i in items:
        table.add_row(
            str(i.id), safe(i.name), safe(i.category_label), safe(i.description, limit=60)
        )
    console.print(table)


@items_app.command("show")
def items_show(item: ItemArg, db: DbOption = None, json: JsonOption = False) -> None:
    """Show an item with its interaction counts per action."""
    from smart_suggest import tracking

    with open_db(db) as store:
        stats = tracking.item_stats(store, item)
    if json:
        emit_json(stats.to_dict())
        return
    it = stats.item
    label = "categories" if len(it.categories) > 1 else "category"
    console.print(
        "Item ",
        safe(it.name, style="bold"),
        f"  id {it.id}  {label} ",
        safe(it.category_label),
        sep="",
    )
    if it.description:
        console.print(safe(it.description))
    table = make_table("Interactions", ["action", ("count", "right")])
    for action, n in stats.actions.items():
        table.add_row(action, str(n))
    table.add_row("total", str(stats.total), style="bold")
    console.print(table)
    console.print(f"Distinct users: {stats.users}   weighted score: {stats.weighted_score}")


def log(
    user: UserArg,
    item: ItemArg,
    action: Annotated[str, typer.Argument(help="view, click or purchase.", show_default=False)],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Log an interaction: USER did ACTION (view, click, purchase) on ITEM."""
    from smart_suggest import tracking

    with open_db(db) as store:
        rec = tracking.log_interaction(store, user, item, action)
    if json:
        emit_json(rec.to_dict())
    else:
        from smart_suggest.text import printable

        say(
            f"Logged {rec.action} of item {rec.item_id} (",
            printable(rec.item_name),
            f") by user {rec.user_id}",
        )


def history(
    user: UserArg, db: DbOption = None, json: JsonOption = False, limit: LimitOption = 20
) -> None:
    """A user's interactions, newest first."""
    from smart_suggest import tracking

    with open_db(db) as store:
        hist = tracking.history(store, user, limit=limit)
        who = tracking.get_user(store, user)
    if json:
        emit_json([h.to_dict() for h in hist])
        return
    title = _plain("History of ", who.username, f" (newest first, {len(hist)} shown)")
    _print_history(hist, title)


def _plain(*parts: str) -> str:
    from smart_suggest.text import printable

    return "".join(printable(p) for p in parts)


def profile(user: UserArg, db: DbOption = None, json: JsonOption = False) -> None:
    """A user's action breakdown, preferred categories and top items."""
    from smart_suggest import tracking

    with open_db(db) as store:
        prof = tracking.profile(store, user)
    if json:
        emit_json(prof.to_dict())
    else:
        _print_profile(prof)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(items_app, name="items")
    app.command("log")(log)
    app.command("history")(history)
    app.command("profile")(profile)
