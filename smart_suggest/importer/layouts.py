"""File layouts: recognise what a file is and read it as the same rows, whatever its shape.

Interactions come out of ``InteractionsReader.stream()`` as field lists; items come out
of ``read_items`` as ``ItemRow``, users (with their attributes) as ``UserRow``. The
layouts recognised:

* **MovieLens 100K**: ``u.data`` (tab-separated user, item, rating, time, no header),
  ``u.item`` (pipe-separated Latin-1: id, title, release date, video release date, IMDb
  URL, then 19 genre flags named by ``u.genre`` beside it or ``--genres FILE``) and
  ``u.user`` (user id|age|gender|occupation|zip code);
* **MovieLens 1M / 10M**: ``ratings.dat``, ``movies.dat`` and (1M) ``users.dat``
  (UserID::Gender::Age::Occupation::Zip-code, age and occupation as codes),
  ``::``-separated (Latin-1), genres as ``Action|Adventure``;
* **MovieLens current releases**: ``ratings.csv`` (userId, movieId, rating, timestamp) and
  ``movies.csv`` (movieId, title, genres as ``Action|Adventure``; "(no genres listed)" is
  none);
* **any delimited file** (``,`` tab ``;`` ``|``; ``::``), with a header naming its columns
  (names below), or without one: user, item, then a value, then a time; a users file
  given with ``--users`` has a header: a user column and one named column per attribute.

Every column is either read or refused by name (``unknown column 'foo'``): nothing is
silently dropped. Files are decoded strictly; a byte that is not valid in the encoding is
reported with its line number.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smart_suggest.csvfiles import CsvFile, open_csv
from smart_suggest.errors import InputError
from smart_suggest.text import is_decimal

#: ``--value-as``: how the value column is read (see ``tracking.value_action``).
VALUE_KINDS = ("rating", "weight", "action")

#: Header names (compared with case, "_", "-" and spaces ignored) -> role.
INTERACTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "uid", "username", "customer", "customerid", "visitorid"),
    "item": ("item", "itemid", "iid", "movie", "movieid", "product", "productid", "bookid"),
    "action": ("action", "event", "eventtype", "type", "interaction"),
    "rating": ("rating", "score", "stars"),
    "weight": ("weight", "value", "count"),
    "time": ("timestamp", "ts", "time", "datetime", "date", "createdat"),
}
ITEM_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "item", "itemid", "iid", "movie", "movieid", "productid", "bookid"),
    "name": ("name", "title", "itemname", "productname"),
    "categories": ("category", "categories", "genre", "genres", "tags"),
    "description": ("description", "desc", "overview", "summary", "text", "plot"),
}
#: Roles whose column holds the interaction's value, and how that value is read.
_VALUE_ROLES = {"action": "action", "rating": "rating", "weight": "weight"}
#: A MovieLens genres field with no genre.
_NO_GENRES = "(no genres listed)"
ML100K_GENRE_FLAGS = 19
MAX_FIELD = 1_000_000


def norm(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-")


@dataclass(frozen=True, slots=True)
class ColumnOptions:
    """What the user said about the files (CLI flags); None means "work it out"."""

    user_col: str | None = None
    item_col: str | None = None
    value_col: str | None = None
    time_col: str | None = None
    value_as: str | None = None
    ignore: tuple[str, ...] = ()
    encoding: str | None = None
    genres: Path | None = None

    def check(self) -> ColumnOptions:
        if self.value_as is not None and self.value_as not in VALUE_KINDS:
            raise InputError(f"unknown --value-as {self.value_as!r}: use rating, weight or action")
        if self.encoding is not None:
            try:
                if not getattr(codecs.lookup(self.encoding), "_is_text_encoding", True):
                    raise LookupError(self.encoding)  # e.g. rot13, base64: not for files
            except LookupError:
                raise InputError(
                    f"unknown encoding {self.encoding!r} (e.g. utf-8, latin-1)"
                ) from None
        return self


# -- decoding ------------------------------------------------------------------------------
def _open_text(path: Path, encoding: str) -> CsvFile:
    """The file as text, each line bounded (``csvfiles.MAX_LINE``: /dev/zero fails fast)."""
    if encoding.replace("-", "").replace("_", "").lower() in ("utf8", "utf8sig"):
        return open_csv(path)  # UTF-8 with an optional BOM; its errors name the file
    open_csv(path).close()  # the same clear errors for a missing or unreadable file
    return CsvFile(open(path, encoding=encoding, newline=""), str(path))


def decoding_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> InputError:
    """The first line of ``path`` that does not decode, as a one-line error."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as bad:
                byte = raw[bad.start : bad.start + 1].hex().upper() if bad.start < len(raw) else ""
                return InputError(
                    f"{path}:{number}: not valid {encoding} text (byte 0x{byte} in column "
                    f"{bad.start + 1}); name the file's encoding with --encoding, e.g. latin-1"
                )
    return InputError(f"{path}: not valid {encoding} text ({exc.reason})")


def _delimiter(first: str) -> str:
    if "::" in first:
        return "::"
    return next((d for d in ("\t", ",", ";", "|") if d in first), ",")


def _split_rows(
    path: Path, encoding: str, delimiter: str | None = None
) -> Generator[tuple[int, list[str]], None, None]:
    """(line, fields) of every non-blank row, decoded strictly."""
    fh = _open_text(path, encoding)
    with fh:
        try:
            first = fh.readline()
            fh.seek(0)
            delim = delimiter or _delimiter(first)
            if delim == "::":
                for number, text in enumerate(fh, start=1):
                    text = text.rstrip("\r\n")
                    if text.strip():
                        yield number, text.split("::")
            else:
                reader = csv.reader(fh, delimiter=delim)
                for fields in reader:
                    if len(fields) > 1 or (fields and fields[0].strip()):
                        yield reader.line_num, fields
        except UnicodeDecodeError as exc:
            raise decoding_error(path, encoding, exc) from None
        except csv.Error as exc:
            raise InputError(f"{path}: unreadable CSV ({exc})") from None


# -- interactions ----------------------------------------------------------------------------
@dataclass
class InteractionsReader:
    """An interactions file with its columns worked out (nothing read past the header)."""

    path: Path
    encoding: str
    delimiter: str | None
    header: bool
    #: role -> (0-based column, its name or "column N")
    columns: dict[str, tuple[int, str]]
    value_as: str  # rating, weight or action ("action" with no value column: every row a view)

    def describe(self) -> str:
        parts = [f"{role} <- {name}" for role, (_, name) in self.columns.items()]
        return ", ".join(parts)

    def stream(self) -> FieldStream:
        """The data rows as field lists, fast (see ``FieldStream``); the header skipped."""
        return FieldStream(self.path, self.encoding, self.delimiter, skip_header=self.header)


class FieldStream:
    """Field lists of a delimited file, read at C speed (``csv.reader`` straight over the
    file), with the line number and the byte position available on demand: the import
    loop runs once per row, so nothing per row is spent on bookkeeping it rarely needs.
    Blank rows come out as ``[]`` or ``[""]``. Use as a context manager.
    """

    def __init__(
        self, path: Path, encoding: str, delimiter: str | None, *, skip_header: bool
    ) -> None:
        open_csv(path).close()  # one clear error for a missing or unreadable file
        self.path = path
        self.encoding = encoding
        self._raw = open(path, "rb")  # noqa: SIM115 (closed by __exit__)
        enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        self._wrapper = io.TextIOWrapper(self._raw, encoding=enc, newline="")
        self._text = CsvFile(self._wrapper, str(path))  # lines bounded, as everywhere
        self._n = 0
        self._reader: Any = None
        try:
            first = self._text.readline()
            self._text.seek(0)
        except UnicodeDecodeError as exc:
            self.close()
            raise decoding_error(path, encoding, exc) from None
        delim = delimiter or _delimiter(first)
        if delim == "::":
            self._it: Iterator[list[str]] = self._dat()
        else:
            self._reader = csv.reader(self._text, delimiter=delim)
            self._it = self._reader
        if skip_header:
            for fields in self:
                if len(fields) > 1 or (fields and fields[0].strip()):
                    break

    def _dat(self) -> Iterator[list[str]]:
        # MovieLens .dat: "::" never appears inside a field, so a plain split is right.
        for n, text in enumerate(self._text, start=1):
            self._n = n
            yield text.rstrip("\r\n").split("::")

    def __iter__(self) -> Iterator[list[str]]:
        return self._it

    def line(self) -> int:
        return int(self._reader.line_num) if self._reader is not None else self._n

    def position(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> FieldStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pick(path: Path, flag: str, wanted: str, names: list[str], header: bool) -> int:
    """The column a ``--x-col`` flag names: a header name, or a 1-based number."""
    if is_decimal(wanted):
        k = int(wanted)
        if not 1 <= k <= len(names):
            raise InputError(f"{path}: {flag} {wanted}: the file has {len(names)} columns")
        return k - 1
    if header:
        matches = [k for k, n in enumerate(names) if n == wanted or norm(n) == norm(wanted)]
        if matches:
            return matches[0]
    raise InputError(
        f"{path}: {flag} {wanted!r}: no such column"
        + (
            f" (the header has {', '.join(repr(n) for n in names)})"
            if header
            else " (the file has no header: give a column number, 1 = first)"
        )
    )


def _is_header(
    fields: Sequence[str], aliases: dict[str, tuple[str, ...]], opts_named: set[str]
) -> bool:
    names = {norm(f) for f in fields}
    known = {a for options in aliases.values() for a in options}
    return bool(names & known) or bool(names & {norm(n) for n in opts_named})


def interactions_reader(
    path: Path, opts: ColumnOptions, *, default_encoding: str = "utf-8"
) -> InteractionsReader:
    """Work out the columns of an interactions file from its first row and the flags."""
    encoding = opts.encoding or default_encoding
    rows = _split_rows(path, encoding)
    try:
        line, first = next(rows)
    except StopIteration:
        raise InputError(f"{path}: the file is empty") from None
    finally:
        rows.close()
    delimiter = None
    named = {v for v in (opts.user_col, opts.item_col, opts.value_col, opts.time_col) if v} | set(
        opts.ignore
    )
    named = {v for v in named if not is_decimal(v)}
    header = _is_header(first, INTERACTION_COLUMNS, named)
    names = [f.strip() for f in first] if header else [f"column {k + 1}" for k in range(len(first))]
    ignored: set[int] = set()
    for name in opts.ignore:
        ignored.add(_pick(path, "--ignore-col", name, names, header))
    columns: dict[str, tuple[int, str]] = {}
    explicit = {
        "user": opts.user_col,
        "item": opts.item_col,
        "value": opts.value_col,
        "time": opts.time_col,
    }
    for role, wanted in explicit.items():
        if wanted:
            k = _pick(path, f"--{role}-col", wanted, names, header)
            columns[role] = (k, names[k])
    taken = {k for k, _ in columns.values()} | ignored
    value_as = opts.value_as
    if header:
        for k, raw in enumerate(first):
            if k in taken:
                continue
            n = norm(raw)
            found = next((r for r, a in INTERACTION_COLUMNS.items() if n in a), None)
            if found is not None and found in _VALUE_ROLES:
                if "value" in columns:
                    other = columns["value"][1]
                    raise InputError(
                        f"{path}:{line}: two value columns, {other!r} and {raw.strip()!r}: "
                        f"choose one with --value-col, skip the other with --ignore-col"
                    )
                columns["value"] = (k, raw.strip())
                if value_as is None:
                    value_as = _VALUE_ROLES[found]
                continue
            if found is not None and found not in columns:
                columns[found] = (k, raw.strip())
                continue
            what = "a second " + found + " column" if found else "unknown column"
            raise InputError(
                f"{path}:{line}: {what} {raw.strip()!r}; use --value-col / --user-col / "
                f"--item-col / --time-col to read it, or --ignore-col {raw.strip()!r} to skip it"
            )
        for role in ("user", "item"):
            if role not in columns:
                expected = ", ".join(INTERACTION_COLUMNS[role][:4])
                raise InputError(
                    f"{path}:{line}: the header has no {role} column (expected one of "
                    f"{expected}, ... or --{role}-col)"
                )
    else:
        if len(first) < 2:
            raise InputError(f"{path}:{line}: need at least a user and an item column")
        free = [k for k in range(len(first)) if k not in taken]
        for role in ("user", "item", "value", "time"):
            if role not in columns and free:
                k = free.pop(0)
                columns[role] = (k, names[k])
        if free:
            raise InputError(
                f"{path}:{line}: {len(first)} columns and no header: column {free[0] + 1} "
                "has no meaning (add a header row, or use --ignore-col "
                f"{free[0] + 1})"
            )
        if "value" in columns and value_as is None:
            raw = first[columns["value"][0]].strip().lower()
            value_as = "action" if raw in ("view", "click", "purchase") else "rating"
    if value_as is None and "value" in columns and header:
        # A column chosen with --value-col is read as its name says, or the user says how.
        n = norm(columns["value"][1])
        found = next((r for r, a in INTERACTION_COLUMNS.items() if n in a), None)
        if found is None or found not in _VALUE_ROLES:
            raise InputError(
                f"{path}: --value-col {columns['value'][1]!r}: say how to read it with "
                "--value-as rating, weight or action"
            )
        value_as = _VALUE_ROLES[found]
    if value_as is None:
        value_as = "action"  # no value column: every row is a view
    if value_as != "action" and "value" not in columns:
        raise InputError(f"{path}: --value-as {value_as} needs a value column (--value-col)")
    order = ("user", "item", "value", "time")
    return InteractionsReader(
        path, encoding, delimiter, header, {r: columns[r] for r in order if r in columns}, value_as
    )


# -- items ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    name: str
    categories: tuple[str, ...]
    description: str


def split_genres(text: str) -> tuple[str, ...]:
    """``Action|Adventure`` -> (Action, Adventure); empty and "(no genres listed)" -> ()."""
    out: dict[str, None] = {}
    for part in text.split("|"):
        part = part.strip()
        if part and part != _NO_GENRES:
            out[part] = None
    return tuple(out)


def _check_text(path: Path, line: int, text: str, what: str) -> str:
    if "\x00" in text:
        raise InputError(f"{path}:{line}: the {what} contains a NUL character")
    if len(text) > MAX_FIELD:
        raise InputError(f"{path}:{line}: the {what} is too long")
    return text


def _item_id(path: Path, line: int, raw: str) -> int:
    raw = raw.strip()
    if not is_decimal(raw) or not 0 < int(raw) <= 2**63 - 1:
        raise InputError(f"{path}:{line}: item id {raw[:40]!r} is not a positive number")
    return int(raw)


def read_genre_names(path: Path, encoding: str) -> list[str]:
    """MovieLens 100K ``u.genre``: ``name|index`` per line, indices 0..18 in order."""
    names: dict[int, str] = {}
    for line, fields in _split_rows(path, encoding, "|"):
        if len(fields) != 2 or not is_decimal(fields[1].strip()):
            raise InputError(f"{path}:{line}: expected 'genre|index'")
        names[int(fields[1])] = _check_text(path, line, fields[0].strip(), "genre")
    if sorted(names) != list(range(len(names))) or not names:
        raise InputError(f"{path}: genre indices must run 0, 1, 2, ... without gaps")
    return [names[k] for k in range(len(names))]


def read_ml100k_items(path: Path, encoding: str, genres: list[str]) -> list[ItemRow]:
    """``u.item``: id|title|release date|video release date|IMDb URL|flag x len(genres).

    Release dates and links are not stored (the import says so); the title is the name
    and the flagged genres are the categories.
    """
    width = 5 + len(genres)
    out: list[ItemRow] = []
    seen: dict[int, int] = {}
    for line, fields in _split_rows(path, encoding, "|"):
        if len(fields) != width:
            raise InputError(
                f"{path}:{line}: expected {width} fields (id, title, release date, video "
                f"release date, URL and {len(genres)} genre flags), found {len(fields)}"
            )
        item_id = _item_id(path, line, fields[0])
        if item_id in seen:
            raise InputError(
                f"{path}:{line}: item {item_id} is listed twice (first on line {seen[item_id]})"
            )
        seen[item_id] = line
        flags = fields[5:]
        cats = []
        for g, flag in zip(genres, flags, strict=True):
            flag = flag.strip()
            if flag not in ("0", "1"):
                raise InputError(f"{path}:{line}: genre flag {flag[:10]!r} for {g!r} is not 0 or 1")
            if flag == "1":
                cats.append(g)
        name = _check_text(path, line, fields[1].strip(), "title") or f"item {item_id}"
        out.append(ItemRow(item_id, name, tuple(c for c in cats if c != "unknown"), ""))
    return out


def read_items(
    path: Path, opts: ColumnOptions, *, default_encoding: str = "utf-8"
) -> list[ItemRow]:
    """An items file with a header (id, name/title, categories/genres, description) or
    without one (id, name, categories, description, in that order)."""
    encoding = opts.encoding or default_encoding
    rows = _split_rows(path, encoding)
    try:
        line, first = next(rows)
    except StopIteration:
        raise InputError(f"{path}: the file is empty") from None
    header = _is_header(first, ITEM_COLUMNS, set())
    columns: dict[str, int] = {}
    if header:
        ignored = {norm(n) for n in opts.ignore}
        for k, raw in enumerate(first):
            n = norm(raw)
            if n in ignored:
                continue
            role = next((r for r, a in ITEM_COLUMNS.items() if n in a), None)
            if role is None or role in columns:
                what = f"a second {role} column" if role else "unknown column"
                raise InputError(
                    f"{path}:{line}: {what} {raw.strip()!r} in the items file (it reads id, "
                    f"name, categories, description); use --ignore-col {raw.strip()!r} to skip it"
                )
            columns[role] = k
        if "id" not in columns:
            raise InputError(
                f"{path}:{line}: the header has no id column (id, item_id, movieId, ...)"
            )
        data: Iterator[tuple[int, list[str]]] = rows
    else:
        if len(first) > 4:
            raise InputError(
                f"{path}:{line}: {len(first)} columns and no header (an items file without a "
                "header has id, name, categories, description)"
            )
        columns = {
            r: k for k, r in enumerate(("id", "name", "categories", "description")[: len(first)])
        }

        def chained() -> Iterator[tuple[int, list[str]]]:
            yield line, first
            yield from rows

        data = chained()
    need = max(columns.values()) + 1
    idc, nc = columns["id"], columns.get("name")
    cc, dc = columns.get("categories"), columns.get("description")
    seen: dict[int, int] = {}
    out: list[ItemRow] = []
    for line, fields in data:
        if len(fields) < need:
            raise InputError(f"{path}:{line}: expected at least {need} fields, found {len(fields)}")
        item_id = _item_id(path, line, fields[idc])
        if item_id in seen:
            raise InputError(
                f"{path}:{line}: item {item_id} is listed twice (first on line {seen[item_id]})"
            )
        seen[item_id] = line
        name = _check_text(path, line, fields[nc].strip(), "name") if nc is not None else ""
        cats = (
            split_genres(_check_text(path, line, fields[cc], "category")) if cc is not None else ()
        )
        desc = _check_text(path, line, fields[dc].strip(), "description") if dc is not None else ""
        out.append(ItemRow(item_id, name or f"item {item_id}", cats, desc))
    return out


# -- users ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserRow:
    """A user of a users file: the identifier as written (resolved like the interactions'
    users) and its attributes as (name, value), in the file's column order."""

    line: int
    user: str
    attributes: tuple[tuple[str, str], ...]


#: MovieLens 1M ``users.dat`` codes (its README): the age group and the occupation.
ML1M_AGES = {
    "1": "under 18",
    "18": "18-24",
    "25": "25-34",
    "35": "35-44",
    "45": "45-49",
    "50": "50-55",
    "56": "56+",
}
ML1M_OCCUPATIONS = (
    "other",  # "other" or not specified
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
#: The attributes the MovieLens users files give, in their order, as stored.
ML1M_USER_ATTRIBUTES = ("gender", "age", "occupation", "zip_code")
ML100K_USER_ATTRIBUTES = ("age", "gender", "occupation", "zip_code")
_GENDERS = ("M", "F")


def _user_field(path: Path, line: int, raw: str) -> str:
    user = raw.strip()
    if not user:
        raise InputError(f"{path}:{line}: empty user id")
    return user


def _no_twice(path: Path, line: int, user: str, seen: dict[str, int]) -> None:
    key = str(int(user)) if is_decimal(user) else user  # "007" and "7" are one user
    if key in seen:
        raise InputError(
            f"{path}:{line}: user {user!r} is listed twice (first on line {seen[key]})"
        )
    seen[key] = line


def _gender(path: Path, line: int, raw: str) -> str:
    gender = raw.strip()
    if gender not in _GENDERS:
        raise InputError(f"{path}:{line}: gender {gender[:10]!r} is not M or F")
    return gender


def _zip(path: Path, line: int, raw: str) -> str:
    code = _check_text(path, line, raw.strip(), "zip code")
    if not code or len(code) > 40:
        raise InputError(f"{path}:{line}: zip code {code[:40]!r} is empty or too long")
    return code


def read_ml1m_users(path: Path, encoding: str) -> list[UserRow]:
    """MovieLens 1M ``users.dat``: UserID::Gender::Age::Occupation::Zip-code.

    Age and occupation are codes; they are stored as what they stand for (age "25-34",
    occupation "programmer"), so that nobody needs the README to read them.
    """
    out: list[UserRow] = []
    seen: dict[str, int] = {}
    for line, fields in _split_rows(path, encoding, "::"):
        if len(fields) != 5:
            raise InputError(
                f"{path}:{line}: expected UserID::Gender::Age::Occupation::Zip-code, found "
                f"{len(fields)} fields"
            )
        user = _user_field(path, line, fields[0])
        _no_twice(path, line, user, seen)
        age = ML1M_AGES.get(fields[2].strip())
        if age is None:
            raise InputError(
                f"{path}:{line}: age {fields[2].strip()[:10]!r} is not a MovieLens 1M age group "
                f"({', '.join(ML1M_AGES)})"
            )
        job = fields[3].strip()
        if not is_decimal(job) or int(job) >= len(ML1M_OCCUPATIONS):
            raise InputError(
                f"{path}:{line}: occupation {job[:10]!r} is not a MovieLens 1M occupation code "
                f"(0-{len(ML1M_OCCUPATIONS) - 1})"
            )
        values = (
            _gender(path, line, fields[1]),
            age,
            ML1M_OCCUPATIONS[int(job)],
            _zip(path, line, fields[4]),
        )
        out.append(UserRow(line, user, tuple(zip(ML1M_USER_ATTRIBUTES, values, strict=True))))
    return out


def read_ml100k_users(path: Path, encoding: str) -> list[UserRow]:
    """MovieLens 100K ``u.user``: user id|age|gender|occupation|zip code (age in years)."""
    out: list[UserRow] = []
    seen: dict[str, int] = {}
    for line, fields in _split_rows(path, encoding, "|"):
        if len(fields) != 5:
            raise InputError(
                f"{path}:{line}: expected user id|age|gender|occupation|zip code, found "
                f"{len(fields)} fields"
            )
        user = _user_field(path, line, fields[0])
        _no_twice(path, line, user, seen)
        age = fields[1].strip()
        if not is_decimal(age) or int(age) > 150:
            raise InputError(f"{path}:{line}: age {age[:10]!r} is not a number of years")
        job = _check_text(path, line, fields[3].strip(), "occupation")
        if not job:
            raise InputError(f"{path}:{line}: empty occupation")
        values = (str(int(age)), _gender(path, line, fields[2]), job, _zip(path, line, fields[4]))
        out.append(UserRow(line, user, tuple(zip(ML100K_USER_ATTRIBUTES, values, strict=True))))
    return out


def read_users(
    path: Path, opts: ColumnOptions, *, default_encoding: str = "utf-8"
) -> tuple[list[UserRow], tuple[str, ...]]:
    """A users file with a header: a user column (user, user_id, userId, username, id,
    ...) and any others, each stored as an attribute named by its header. Returns the
    users and the attribute names. Without a header the columns have no names to store
    them under, so the file is refused."""
    encoding = opts.encoding or default_encoding
    rows = _split_rows(path, encoding)
    try:
        try:
            line, first = next(rows)
        except StopIteration:
            raise InputError(f"{path}: the file is empty") from None
        names = [f.strip() for f in first]
        user_names = {*INTERACTION_COLUMNS["user"], "id"}
        ignored = {norm(n) for n in opts.ignore}
        user_col = None
        attributes: dict[int, str] = {}
        for k, name in enumerate(names):
            n = norm(name)
            if n in ignored:
                continue
            if n in user_names and user_col is None:
                user_col = k
                continue
            if not name or is_decimal(name):
                raise InputError(
                    f"{path}:{line}: a users file needs a header naming its columns: a user "
                    "column (user, user_id, userId, username, id) and one name per attribute "
                    f"(column {k + 1} is {name!r})"
                )
            stored = name.lower().replace(" ", "_").replace("-", "_")
            if stored in attributes.values():
                raise InputError(f"{path}:{line}: two columns named {name!r}")
            attributes[k] = _check_text(path, line, stored, "column name")
        if user_col is None:
            raise InputError(
                f"{path}:{line}: the header has no user column (user, user_id, userId, "
                "username, id)"
            )
        need = max([user_col, *attributes]) + 1
        out: list[UserRow] = []
        seen: dict[str, int] = {}
        for line, fields in rows:
            if len(fields) < need:
                raise InputError(
                    f"{path}:{line}: expected at least {need} fields, found {len(fields)}"
                )
            user = _user_field(path, line, fields[user_col])
            _no_twice(path, line, user, seen)
            values = tuple(
                (name, _check_text(path, line, fields[k].strip(), name))
                for k, name in attributes.items()
                if fields[k].strip()  # an empty field says nothing about the user
            )
            out.append(UserRow(line, user, values))
    finally:
        rows.close()
    return out, tuple(attributes.values())


def _users_any(users_path: Path, opts: ColumnOptions) -> tuple[list[UserRow], str]:
    """The users of ``users_path`` by its layout, and how the one-line message names them."""
    if users_path.name == "u.user":
        users = read_ml100k_users(users_path, opts.encoding or "latin-1")
        what = "age, gender, occupation, zip code"
    elif users_path.name.endswith(".dat"):
        users = read_ml1m_users(users_path, opts.encoding or "latin-1")
        what = "gender, age group, occupation, zip code"
    else:
        users, names = read_users(users_path, opts)
        what = ", ".join(names) or "no attributes"
    return users, f" + {users_path.name} ({len(users):,} users: {what})"


# -- recognising the layout ----------------------------------------------------------------
@dataclass
class Layout:
    """What is going to be read, and the one line that tells the user."""

    name: str
    ratings: InteractionsReader
    items: list[ItemRow] | None
    message: str
    users: list[UserRow] | None = None
    users_path: Path | None = None


def _beside(path: Path, name: str) -> Path | None:
    p = path.parent / name
    return p if p.is_file() else None


def detect(
    path: Path,
    items_path: Path | None,
    opts: ColumnOptions,
    users_path: Path | None = None,
) -> Layout:
    """Recognise the layout of ``path`` (a file, or a folder of MovieLens files); the
    users file is ``users_path``, else the MovieLens one beside a MovieLens file."""
    opts = opts.check()
    if users_path is not None and not users_path.is_file():
        raise InputError(f"{users_path}: no such file")
    layout = _detect(path, items_path, opts, users_path)
    if layout.users_path is not None:
        layout.users, note = _users_any(layout.users_path, opts)
        layout.message += note
    return layout


def _detect(
    path: Path, items_path: Path | None, opts: ColumnOptions, users_path: Path | None
) -> Layout:
    if path.is_dir():
        for name in ("u.data", "ratings.dat", "ratings.csv"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise InputError(
                f"{path}: a folder without u.data, ratings.dat or ratings.csv (give the file)"
            )
    if not path.exists():
        raise InputError(f"{path}: no such file")
    plain = not (opts.user_col or opts.item_col or opts.value_col or opts.time_col or opts.ignore)
    if path.name == "u.data" and plain:
        layout = _ml100k(path, items_path, opts)
        layout.users_path = users_path or _beside(path, "u.user")
        return layout
    if path.name.endswith(".dat") and plain:
        layout = _ml1m(path, items_path, opts)
        layout.users_path = users_path or _beside(path, "users.dat")
        return layout
    reader = interactions_reader(path, opts)
    items = None
    items_note = ""
    if items_path is None and path.name == "ratings.csv" and reader.header:
        items_path = _beside(path, "movies.csv")
        if items_path is not None:
            items_note = " (found beside it)"
    if items_path is not None:
        items = _items_any(items_path, opts)
    movielens = (
        path.name == "ratings.csv" and items_path is not None and items_path.name == "movies.csv"
    )
    name = "MovieLens (current release)" if movielens else "delimited file"
    message = (
        f"Detected {name}: {path.name} ({'header' if reader.header else 'no header'}; "
        f"{reader.describe()}; values read as {reader.value_as}s)"
    )
    if items is not None and items_path is not None:
        message += f" + {items_path.name}{items_note} ({len(items):,} items)"
    return Layout(name, reader, items, message, users_path=users_path)


def _items_any(items_path: Path, opts: ColumnOptions) -> list[ItemRow]:
    if items_path.name == "u.item":
        genres_path = opts.genres or _beside(items_path, "u.genre")
        if genres_path is None:
            raise InputError(
                f"{items_path}: MovieLens 100K genre flags need their names: put u.genre "
                "beside it or pass --genres FILE"
            )
        enc = opts.encoding or "latin-1"
        return read_ml100k_items(items_path, enc, read_genre_names(genres_path, enc))
    if items_path.name.endswith(".dat"):
        return _read_dat_items(items_path, opts)
    return read_items(items_path, opts)


def _read_dat_items(path: Path, opts: ColumnOptions) -> list[ItemRow]:
    """MovieLens 1M/10M ``movies.dat``: MovieID::Title::Genres (Latin-1)."""
    enc = opts.encoding or "latin-1"
    out: list[ItemRow] = []
    seen: dict[int, int] = {}
    for line, fields in _split_rows(path, enc, "::"):
        if len(fields) != 3:
            raise InputError(
                f"{path}:{line}: expected MovieID::Title::Genres, found {len(fields)} fields"
            )
        item_id = _item_id(path, line, fields[0])
        if item_id in seen:
            raise InputError(
                f"{path}:{line}: item {item_id} is listed twice (first on line {seen[item_id]})"
            )
        seen[item_id] = line
        name = _check_text(path, line, fields[1].strip(), "title") or f"item {item_id}"
        out.append(
            ItemRow(item_id, name, split_genres(_check_text(path, line, fields[2], "genres")), "")
        )
    return out


def _ml100k(path: Path, items_path: Path | None, opts: ColumnOptions) -> Layout:
    reader = interactions_reader(path, opts)
    if reader.header or len(reader.columns) != 4:
        raise InputError(f"{path}: not the MovieLens 100K layout (user, item, rating, time; tabs)")
    items_path = items_path or _beside(path, "u.item")
    items = _items_any(items_path, opts) if items_path is not None else None
    message = "Detected MovieLens 100K: u.data (tab-separated user, item, rating, time)"
    if items is not None and items_path is not None:
        if items_path.name == "u.item":
            genres = opts.genres or _beside(items_path, "u.genre")
            message += (
                f" + {items_path.name} ({len(items):,} items, {opts.encoding or 'Latin-1'}: titles "
                f"and genre flags named by {genres.name if genres else '?'}; release dates and "
                "IMDb links are not stored)"
            )
        else:
            message += f" + {items_path.name} ({len(items):,} items)"
    return Layout("MovieLens 100K", reader, items, message)


def _ml1m(path: Path, items_path: Path | None, opts: ColumnOptions) -> Layout:
    reader = interactions_reader(path, opts)
    if reader.header:
        raise InputError(f"{path}: a .dat file with a header is not a MovieLens layout")
    items_path = items_path or _beside(path, "movies.dat")
    items = _items_any(items_path, opts) if items_path is not None else None
    message = f"Detected MovieLens 1M/10M: {path.name} ('::'-separated user, item, rating, time)"
    if items is not None and items_path is not None:
        message += f" + {items_path.name} ({len(items):,} items: titles and genres)"
    return Layout("MovieLens 1M", reader, items, message)
