"""The catalogs' tool: extract every message of the web app, and add the missing ones to an area's files.

    .venv/bin/python -m web.catalogs update <area> <file or folder> ...   # new msgids, empty, in lv/lt/ru/en
    .venv/bin/python -m web.catalogs fill <area> <file.json>   # {"msgid": {"lv": "...", "lt": [plurals], "ru": ...}}
    .venv/bin/python -m web.catalogs check                                # what the test checks, printed

Messages are found in Python (``_``, ``gettext``, ``ngettext``, ``N_``) and in the templates
(``{{ _("...") }}``, ``{% trans %}``), with Babel's own extractors. ``N_("...")`` marks a message
for extraction where the sentence is translated later (a table of sentences, for example).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import write_po

from web.i18n import FOLDER, LOCALES, area_files, read_catalog

ROOT = Path(__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "pick": (1, 2)}
TRANSLATED = tuple(locale for locale in LOCALES if locale != "en")  # source strings are English


@dataclass(frozen=True)
class Message:
    id: str
    plural: str | None
    where: str


def _method(path: Path) -> str | None:
    if path.suffix == ".py":
        return "python"
    if path.suffix == ".html":
        return "jinja2.ext:babel_extract"
    return None


def files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if _method(p) and "node_modules" not in p.parts)
        elif _method(path) and path.exists():
            yield path


def extract(paths: Iterable[Path]) -> list[Message]:
    found: list[Message] = []
    for path in files(paths):
        method = _method(path)
        assert method is not None
        options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"} if path.suffix == ".html" else {}
        path = path.resolve()
        for line, text, _comments, _context in extract_from_file(method, str(path), keywords=KEYWORDS,
                                                                 options=options):
            if isinstance(text, tuple):
                singular, plural = text[0], text[1] if len(text) > 1 else None
            else:
                singular, plural = text, None
            if singular:
                found.append(Message(singular, plural, f"{path.relative_to(ROOT.parent)}:{line}"))
    return found


# Files outside web/ whose sentences people read and the web app's catalogs translate: the zip's README.
ELSEWHERE = ("api/dataset.py",)


def all_messages() -> list[Message]:
    return extract([ROOT, *(ROOT.parent / name for name in ELSEWHERE)])


def update(area: str, paths: list[Path]) -> None:
    messages = extract(paths)
    for locale in LOCALES:
        path = FOLDER / locale / "LC_MESSAGES" / f"{area}.po"
        catalog = read_catalog(path) if path.exists() else Catalog(locale=locale, project="Lauks",
                                                                   domain=area)
        catalog.header_comment = f"# Lauks web app, area {area!r}, locale {locale}."
        for message in messages:
            if catalog.get(message.id) is None and not any(
                    catalog_has(other, message.id) for other in area_files(locale) if other != path):
                msgid: str | tuple[str, str] = (message.id, message.plural) if message.plural else message.id
                catalog.add(msgid, locations=[(message.where.rsplit(":", 1)[0], int(message.where.rsplit(":")[1]))])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            write_po(out, catalog, width=120, omit_header=False, include_lineno=False, sort_output=True)


def fill(area: str, translations: dict[str, dict[str, str | list[str]]]) -> list[str]:
    """Set the translations given; returns the msgids that the area's files do not have (run update first)."""
    missing: set[str] = set()
    for locale in TRANSLATED:
        path = FOLDER / locale / "LC_MESSAGES" / f"{area}.po"
        catalog = read_catalog(path)
        for msgid, texts in translations.items():
            if locale not in texts:
                continue
            entry = catalog.get(msgid)
            if entry is None:
                missing.add(msgid)
                continue
            text = texts[locale]
            entry.string = tuple(text) if isinstance(text, list) else text
            entry.flags.discard("fuzzy")
        with path.open("wb") as out:
            write_po(out, catalog, width=120, include_lineno=False, sort_output=True)
    return sorted(missing)


def catalog_has(path: Path, msgid: str) -> bool:
    return read_catalog(path).get(msgid) is not None


def problems() -> list[str]:
    """Every message without a translation in lv, lt or ru, and every translation whose placeholders
    differ from its message's (Babel's python-format checker)."""
    from web.i18n import catalog
    found: list[str] = []
    messages = all_messages()
    for locale in TRANSLATED:
        merged = catalog(locale)
        for message in messages:
            if message.id not in merged:
                found.append(f"{locale}: no translation of {message.id!r} ({message.where})")
        for path in area_files(locale):
            for entry, errors in read_catalog(path).check():
                found += [f"{locale}/{path.name}: {entry.id!r}: {error}" for error in errors]
    return sorted(set(found))


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"] and len(argv) >= 3:
        update(argv[1], [Path(p) for p in argv[2:]])
        return 0
    if argv[:1] == ["fill"] and len(argv) == 3:
        import json
        missing = fill(argv[1], json.loads(Path(argv[2]).read_text()))
        print("\n".join(f"not in {argv[1]}.po: {m!r}" for m in missing) or "filled")
        return 1 if missing else 0
    if argv[:1] == ["check"]:
        found = problems()
        print("\n".join(found) or "every message is translated")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
