"""Commands of the API part: ``lauks api``, ``lauks token create|list|revoke``, ``lauks site``, and
``lauks kit register|edit|retire|list``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The imports below are made where they are needed: every `lauks` command imports this module.


def _run(action: Callable[[Session, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command on the store that the settings name (LAUKS_API_DATABASE_URL, else SQLite in the state folder)."""

    def handler(args: argparse.Namespace) -> int:
        from metastore.db import one_session
        from metastore.errors import StoreError
        from metastore.settings import StoreSettings

        try:
            with one_session(StoreSettings().database_url) as session:
                return action(session, args)
        except StoreError as error:
            print(f"lauks: {error.message}", file=sys.stderr)
            return 1

    return handler


def _serve(args: argparse.Namespace) -> int:
    import gc

    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings()
    app = create_app(settings)
    # What start-up made (some 130,000 objects: modules, routes, templates, the catalogs) lives as long as the
    # process, so the collector need never scan it again: a full collection over it took about 90 ms, a pause in
    # every tenth or so load of the fleet page. Frozen here, where one app is made per process (not in
    # create_app: the tests make many, and an app frozen and then dropped would never be collected).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=settings.api_host, port=args.port or settings.api_port,
                log_level="info", access_log=False,
                # Our own rate limit decides whom to believe about X-Forwarded-For (LAUKS_API_TRUSTED_PROXIES);
                # uvicorn would take it from any connection on loopback.
                proxy_headers=False)
    return 0


def _token_create(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    token = registry.create_token(session, args.name)
    print(token)
    print(f"(staff token for {args.name}: shown only this once, stored hashed; send it as "
          "'Authorization: Bearer <token>')", file=sys.stderr)
    return 0


def _changes(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The options that were given, by field name (``--elevation`` is ``elevation_m``)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _token_list(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    for row in registry.list_tokens(session, include_revoked=args.all):
        revoked = f"\trevoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else ""
        print(f"{row.id}\t{row.name}\tcreated {row.created_at:%Y-%m-%d %H:%M}{revoked}")
    return 0


def _token_revoke(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    row = registry.revoke_token(session, args.id)
    print(f"revoked staff token {row.id} ({row.name}): every API process using this store refuses it from now on")
    return 0


def _site_add(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    site = registry.add_site(session, args.name, **_changes(args, registry.SITE_FIELDS))
    print(f"added site {site.name}")
    return 0


def _site_edit(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    registry.edit_site(session, args.name, **_changes(args, registry.SITE_FIELDS))
    print(f"edited site {args.name}")
    return 0


def _site_retire(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    registry.retire_site(session, args.name)
    print(f"retired site {args.name} (its data stays readable)")
    return 0


def _site_list(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    for site in registry.list_sites(session, include_retired=args.all):
        where = f"{site.latitude},{site.longitude}" if site.latitude is not None else "-"
        retired = " (retired)" if site.retired_at else ""
        print(f"{site.name}\t{site.title}\t{where}\t{site.timezone or '-'}{retired}")
    return 0


def _kit_register(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    registry.add_kit(session, args.site, args.name, **_changes(args, registry.KIT_FIELDS))
    print(f"registered kit {args.name} at site {args.site}")
    return 0


def _kit_edit(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    registry.edit_kit(session, args.site, args.name, **_changes(args, registry.KIT_FIELDS))
    print(f"edited kit {args.name} at site {args.site}")
    return 0


def _kit_retire(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    registry.retire_kit(session, args.site, args.name)
    print(f"retired kit {args.name} at site {args.site} (its data stays readable)")
    return 0


def _kit_list(session: Session, args: argparse.Namespace) -> int:
    from metastore import registry

    for kit in registry.list_kits(session, args.site, include_retired=args.all):
        retired = " (retired)" if kit.retired_at else ""
        print(f"{kit.site}\t{kit.name}\t{kit.kit_type}\t{kit.location_precision}\t{kit.description}{retired}")
    return 0


def _location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latitude", type=float)
    parser.add_argument("--longitude", type=float)
    parser.add_argument("--elevation", dest="elevation_m", type=float, help="metres above sea level")
    parser.add_argument("--description")


def _site_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--title")
    parser.add_argument("--timezone", help="IANA zone of the school, e.g. Europe/Riga")
    _location(parser)


def _kit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site")
    parser.add_argument("name")
    parser.add_argument("--type", dest="kit_type", help="e.g. weather, soil, river, air")
    parser.add_argument("--deployed-since", dest="deployed_since", type=datetime.fromisoformat,
                        help="ISO 8601 time with offset, e.g. 2025-03-01T09:00+02:00")
    parser.add_argument("--location-precision", dest="location_precision", choices=("exact", "blurred"),
                        help="blurred (a new kit's default): readers without a staff token see its place to "
                             "about 1 km, so a kit at a pupil's home does not show it; exact: for a kit at school")
    _location(parser)


def register(commands: argparse._SubParsersAction[Any], kit_commands: argparse._SubParsersAction[Any]) -> None:
    """Add this part's subcommands to ``lauks`` and to ``lauks kit``."""
    api = commands.add_parser("api", help="run the API for classes (uvicorn on 127.0.0.1:LAUKS_API_PORT)")
    api.add_argument("--port", type=int, help="instead of LAUKS_API_PORT")
    api.set_defaults(func=_serve)

    token = commands.add_parser("token", help="staff tokens for the API")
    token_commands = token.add_subparsers(dest="token_command", metavar="TOKEN_COMMAND", required=True)
    create = token_commands.add_parser("create", help="create a staff token (printed once, stored hashed)")
    create.add_argument("--name", required=True, help="whose token it is, e.g. 'Ms Ozola'")
    create.set_defaults(func=_run(_token_create))
    tokens = token_commands.add_parser("list", help="list the staff tokens (their number and name; never the token)")
    tokens.add_argument("--all", action="store_true", help="revoked tokens too")
    tokens.set_defaults(func=_run(_token_list))
    revoke = token_commands.add_parser("revoke", help="revoke a staff token: the API refuses it from then on")
    revoke.add_argument("id", type=int, help="the token's number, as `lauks token list` shows it")
    revoke.set_defaults(func=_run(_token_revoke))

    site = commands.add_parser("site", help="add, edit, retire and list sites")
    site_commands = site.add_subparsers(dest="site_command", metavar="SITE_COMMAND", required=True)
    for name, handler, text in (("add", _site_add, "add a site"), ("edit", _site_edit, "edit a site")):
        parser = site_commands.add_parser(name, help=text)
        _site_options(parser)
        parser.set_defaults(func=_run(handler))
    retire = site_commands.add_parser("retire", help="retire a site (its data stays)")
    retire.add_argument("name")
    retire.set_defaults(func=_run(_site_retire))
    listing = site_commands.add_parser("list", help="list the sites")
    listing.add_argument("--all", action="store_true", help="retired sites too")
    listing.set_defaults(func=_run(_site_list))

    for name, handler, text in (("register", _kit_register, "record a kit in the API's registry"),
                                ("edit", _kit_edit, "edit a kit's metadata")):
        parser = kit_commands.add_parser(name, help=text)
        _kit_options(parser)
        parser.set_defaults(func=_run(handler))
    retire_kit = kit_commands.add_parser("retire", help="retire a kit (its data stays)")
    retire_kit.add_argument("site")
    retire_kit.add_argument("name")
    retire_kit.set_defaults(func=_run(_kit_retire))
    kit_list = kit_commands.add_parser("list", help="list the kits of a site")
    kit_list.add_argument("site")
    kit_list.add_argument("--all", action="store_true", help="retired kits too")
    kit_list.set_defaults(func=_run(_kit_list))
