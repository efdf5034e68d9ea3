"""``zanzi migrate``: create or upgrade a datastore's tables."""

from __future__ import annotations

import click

from zanzi.cli.main import out_console, state

__all__ = ["COMMANDS", "migrate"]


@click.command("migrate")
@click.option(
    "--datastore",
    "datastore",
    metavar="URL",
    default=None,
    help="Datastore to migrate (default: the global --datastore). PostgreSQL needs this before "
    "first use and after upgrading Zanzi; SQLite migrates itself when opened.",
)
def migrate(datastore: str | None) -> None:
    """Create or upgrade the Zanzi tables of a datastore.

    Safe to run again (nothing happens when the tables are current) and from several processes
    at once. A database written by a newer Zanzi is refused. Prints the schema version.
    """
    url = datastore if datastore is not None else state().datastore
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres"):
        from zanzi.store.sql.postgres import migrate_postgres

        version = migrate_postgres(url)
        out_console().print(f"migrated to schema version {version}")
        return
    from zanzi.store.registry import open_datastore

    open_datastore(url).close()  # the other built-in backends migrate when opened
    out_console().print("migrated (this datastore migrates itself when opened)")


COMMANDS: list[click.Command] = [migrate]
