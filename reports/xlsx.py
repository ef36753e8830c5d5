"""A small streaming .xlsx writer: typed cells, a bold frozen header with a filter, sized columns.

Written for the two workbooks this job makes (see `reconcile.reports.workbook`) and for
speed: each row becomes its XML as it is added, so 30,000 flagged numbers take a fraction
of a second where openpyxl took tens of seconds. What it writes:

- text as inline strings with the text format ("@"): never a formula, whatever a customer typed;
- Decimal as a number with its currency's format, written exactly as the Decimal reads;
- datetimes (UTC) and dates as Excel serials with a date format; ints as numbers;
- a fixed timestamp in the package and every zip entry, so the same input gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, SupportsIndex, overload
from xml.sax.saxutils import quoteattr

import pandas as pd
from pandas import NA, NaT

from reconcile.money import minor_digits

MAX_WIDTH = 60
EPOCH = dt.datetime(1899, 12, 30)  # Excel's day zero (with its 1900 leap-year quirk folded in)
TEXT, BOLD, DATETIME, DATE = 1, 2, 3, 4  # fixed cell styles; money styles follow
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def column_letter(index: int) -> str:
    """1 -> A, 27 -> AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not text.isprintable() and _ILLEGAL.search(text):  # printable text (nearly all) holds none
        text = _ILLEGAL.sub("\ufffd", text)
    return text


def excel_serial(value: dt.datetime | dt.date) -> str:
    """Days since Excel's epoch (UTC for aware times), as the <v> of a date cell."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        delta = value - EPOCH
        return repr(delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400)
    return str((value - EPOCH.date()).days)


class Serials(list[float | None]):
    """A column of UTC times already turned into Excel's serials (see `serials`), blanks None: date-time
    cells. A slice of it is one too."""

    @overload
    def __getitem__(self, index: SupportsIndex) -> float | None: ...
    @overload
    def __getitem__(self, index: slice) -> Serials: ...

    def __getitem__(self, index: SupportsIndex | slice) -> float | None | Serials:
        if isinstance(index, slice):
            return Serials(super().__getitem__(index))
        return super().__getitem__(index)


def serials(column: pd.Series) -> Serials:
    """A datetime column as Excel serials, all at once (blanks None)."""
    naive = column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column
    days = ((naive - pd.Timestamp(EPOCH)) / pd.Timedelta(days=1)).tolist()
    return Serials([None if value != value else value for value in days])


class Book:
    """Sheets in order, and the number formats they use; `save` writes the package."""

    def __init__(self) -> None:
        self.sheets: list[Sheet] = []
        self.formats: dict[str, int] = {}  # money format code -> its cell style index

    def money_style(self, code: str) -> int:
        style = self.formats.get(code)
        if style is None:
            style = self.formats[code] = DATE + 1 + len(self.formats)
        return style

    def save(self, path: Path, when: dt.datetime) -> None:
        stamp = when.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
        sheets = "".join(f'<sheet name={quoteattr(s.title)} sheetId="{i}" r:id="rId{i}"/>'
                         for i, s in enumerate(self.sheets, start=1))
        filters = "".join(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                          f"{_escape(s.quoted_ref())}</definedName>" for i, s in enumerate(self.sheets))
        parts = {
            "[Content_Types].xml": _content_types(len(self.sheets)),
            "_rels/.rels": _ROOT_RELS,
            "docProps/core.xml": _core(stamp),
            "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{_MAIN}" '
                               f'xmlns:r="{_REL}"><sheets>{sheets}</sheets><definedNames>{filters}</definedNames>'
                               "</workbook>",
            "xl/_rels/workbook.xml.rels": _workbook_rels(len(self.sheets)),
            "xl/styles.xml": self._styles(),
        }
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as package:
            for name, body in parts.items():
                _write(package, name, [body], stamp)
            for index, sheet in enumerate(self.sheets, start=1):  # streamed: never one string of every row
                _write(package, f"xl/worksheets/sheet{index}.xml", sheet.xml(), stamp)

    def _styles(self) -> str:
        codes = ["yyyy-mm-dd hh:mm", "yyyy-mm-dd", *self.formats]
        num_fmts = "".join(f"<numFmt numFmtId={quoteattr(str(164 + i))} formatCode={quoteattr(code)}/>"
                           for i, code in enumerate(codes))
        xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
               '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>',
               '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1"/>',
               *(f'<xf numFmtId="{164 + i}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
                 for i in range(len(codes)))]
        return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{_MAIN}">'
                f'<numFmts count="{len(codes)}">{num_fmts}</numFmts>'
                '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
                '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
                '<fills count="2"><fill><patternFill patternType="none"/></fill>'
                '<fill><patternFill patternType="gray125"/></fill></fills>'
                '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
                '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
                f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
                '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


class Sheet:
    """One worksheet of `book`: a bold header, then rows, each turned into XML as it is added."""

    def __init__(self, book: Book, title: str, header: Sequence[str]) -> None:
        self.book, self.title, self.header = book, title, list(header)
        self.letters = [column_letter(i) for i in range(1, len(header) + 1)]
        self.widths = [len(name) for name in header]
        self.rows: list[str] = []
        self._row(list(header), [BOLD] * len(header))
        book.sheets.append(self)

    def row(self, values: Iterable[Any], currency: str | None = None, rated: Sequence[int] = ()) -> None:
        """Add a row: Decimals are money in `currency` (the columns in `rated` at 4 places), str is text."""
        cells = list(values)
        styles: list[int] = []
        money: dict[int, int] = {}
        for index, value in enumerate(cells):
            if isinstance(value, Decimal) and currency:
                digits = 4 if index in rated else None
                style = money.get(4 if digits else 0)
                if style is None:
                    style = money[4 if digits else 0] = self.book.money_style(money_format(currency, digits))
                styles.append(style)
            else:
                styles.append(0)
        self._row(cells, styles)

    def columns(self, columns: Sequence[Sequence[Any]], currencies: Sequence[str | None]) -> None:
        """Add rows given a column at a time (as a frame holds them), money in each row's currency.

        A column of one kind (text, money, times as `Serials`, counts) is rendered in one pass: no
        per-cell dispatch.
        """
        start = len(self.rows) + 1
        numbers = [str(number) for number in range(start, start + len(currencies))]  # each row's, once for all
        rendered = [self._column(index, values, numbers, currencies) for index, values in enumerate(columns)]
        self.rows += [f'<row r="{number}">{"".join(cells)}</row>'
                      for number, cells in zip(numbers, zip(*rendered, strict=True), strict=True)]

    def _column(self, index: int, values: Sequence[Any], numbers: list[str],
                currencies: Sequence[str | None]) -> list[str]:
        letter = self.letters[index]
        kinds = {Serials} if isinstance(values, Serials) else set(map(type, values)) - {type(None)}
        widest = 0
        if kinds == {Serials}:
            head = f'<c r="{letter}'
            cells = ["" if v is None else f'{head}{n}" s="{DATETIME}"><v>{v!r}</v></c>'
                     for n, v in zip(numbers, values, strict=True)]
            widest = 16
        elif kinds == {str}:
            distinct = set(values)
            distinct.discard(None)
            joined = "".join(distinct)  # texts repeat: each escaped once; most need nothing, and one look says so
            if "&" in joined or "<" in joined or ">" in joined or not joined.isprintable():
                escaped = {v: _escape(v) for v in distinct}
                values = [None if v is None else escaped[v] for v in values]
            head, body = f'<c r="{letter}', f'" s="{TEXT}" t="inlineStr"><is><t xml:space="preserve">'
            cells = ["" if v is None else f"{head}{n}{body}{v}</t></is></c>" for n, v in zip(numbers, values, strict=True)]
            widest = max(map(len, distinct), default=0)
        elif kinds == {Decimal}:
            # in sorted order: a set's order changes between runs, and the same review must give the same bytes
            styles = {c: self.book.money_style(money_format(c)) if c else 0
                      for c in sorted(set(currencies), key=lambda code: code or "")}
            # prices repeat (one shared Decimal per price as the store reads them): each written once; by
            # identity, as Decimal("1.5") == Decimal("1.50") but each is written as it reads
            shown = {id(v): f"{v:f}" for v in values if v is not None}
            texts = [None if v is None else shown[id(v)] for v in values]
            cells = ["" if t is None else f'<c r="{letter}{n}" s="{styles[c]}"><v>{t}</v></c>' if styles[c]
                     else f'<c r="{letter}{n}"><v>{t}</v></c>'
                     for n, t, c in zip(numbers, texts, currencies, strict=True)]
            widest = max((len(t) + len(t) // 4 for t in texts if t is not None), default=0)
        elif kinds == {int}:
            cells = ["" if v is None else f'<c r="{letter}{n}"><v>{v}</v></c>' for n, v in zip(numbers, values, strict=True)]
            widest = max((len(str(v)) for v in values if v is not None), default=0)
        else:  # mixed or unusual: cell by cell
            cells = []
            for number, value, currency in zip(numbers, values, currencies, strict=True):
                style = (self.book.money_style(money_format(currency)) if isinstance(value, Decimal) and currency
                         else 0)
                made = _cell(f"{letter}{number}", value, style)
                cells.append(made[0] if made else "")
                widest = max(widest, made[1] if made else 0)
        if widest + 2 > self.widths[index]:
            self.widths[index] = min(MAX_WIDTH, widest + 2)
        return cells

    def _row(self, cells: list[Any], styles: list[int]) -> None:
        number = len(self.rows) + 1
        out = [f'<row r="{number}">']
        for index, value in enumerate(cells):
            made = _cell(f"{self.letters[index]}{number}", value, styles[index])
            if made is None:
                continue
            out.append(made[0])
            if made[1] + 2 > self.widths[index]:
                self.widths[index] = min(MAX_WIDTH, made[1] + 2)
        out.append("</row>")
        self.rows.append("".join(out))

    def ref(self) -> str:
        return f"A1:{self.letters[-1]}{len(self.rows)}"

    def quoted_ref(self) -> str:
        title = self.title.replace("'", "''")
        return f"'{title}'!${self.letters[0]}$1:${self.letters[-1]}${len(self.rows)}"

    def xml(self) -> Iterator[str]:
        """The worksheet's XML, a thousand rows at a time."""
        cols = "".join(f'<col min="{i}" max="{i}" width="{max(8, w + 2)}" customWidth="1"/>'
                       for i, w in enumerate(self.widths, start=1))
        yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}" '
               f'xmlns:r="{_REL}"><dimension ref="{self.ref()}"/><sheetViews><sheetView workbookViewId="0">'
               '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
               '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
               f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>')
        for start in range(0, len(self.rows), 1000):
            yield "".join(self.rows[start:start + 1000])
        yield f'</sheetData><autoFilter ref="{self.ref()}"/></worksheet>'


def _cell(ref: str, value: Any, style: int) -> tuple[str, int] | None:
    """One cell's XML and about how many characters it shows; None for a blank. `style`: a money
    style for a Decimal, or 0 (text gets the text style, times a date style)."""
    kind = type(value)
    if value is None or value is NaT or value is NA or (kind is float and value != value):
        return None  # pandas' blanks are empty cells, as None is
    if kind is str:
        return (f'<c r="{ref}" s="{style or TEXT}" t="inlineStr"><is><t xml:space="preserve">{_escape(value)}'
                "</t></is></c>"), len(value)
    if kind is Decimal:
        text = f"{value:f}"
        return (f'<c r="{ref}" s="{style}"><v>{text}</v></c>' if style else f'<c r="{ref}"><v>{text}</v></c>',
                len(text) + len(text) // 4)
    if isinstance(value, dt.datetime):
        return f'<c r="{ref}" s="{DATETIME}"><v>{excel_serial(value)}</v></c>', 16
    if isinstance(value, dt.date):
        return f'<c r="{ref}" s="{DATE}"><v>{excel_serial(value)}</v></c>', 10
    if kind is bool:
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>', 5
    if isinstance(value, numbers.Number):
        text = str(value)
        return f'<c r="{ref}"><v>{text}</v></c>', len(text)
    text = str(value)
    return (f'<c r="{ref}" s="{TEXT}" t="inlineStr"><is><t xml:space="preserve">{_escape(text)}'
            "</t></is></c>"), len(text)


def money_format(currency: str, digits: int | None = None) -> str:
    """An Excel number format for an amount in `currency`: "#,##0.00 "USD"" (the code, quoted)."""
    places = minor_digits(currency) if digits is None else digits
    return f'#,##0{"." + "0" * places if places else ""} "{currency}"'


def _write(package: zipfile.ZipFile, name: str, pieces: Iterable[str], stamp: dt.datetime) -> None:
    """One zip entry from text pieces (UTF-8), stamped `stamp` and deflated at level 1: the same bytes
    for the same input."""
    entry = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    # Python 3.13 named it compress_level (the old name stays as an alias); 3.11 and 3.12 know only the old one
    setattr(entry, "compress_level" if hasattr(zipfile.ZipInfo, "compress_level") else "_compresslevel", 1)
    with package.open(entry, "w") as out:
        for piece in pieces:
            out.write(piece.encode("utf-8"))


def _content_types(sheets: int) -> str:
    overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, sheets + 1))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
            'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.styles+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.'
            f'openxmlformats-package.core-properties+xml"/>{overrides}</Types>')


_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/><Relationship Id="rId2" Type="http://schemas.'
    'openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    '</Relationships>')


def _workbook_rels(sheets: int) -> str:
    links = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                    for i in range(1, sheets + 1))
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.'
            f'openxmlformats.org/package/2006/relationships">{links}<Relationship Id="rId{sheets + 1}" '
            f'Type="{_REL}/styles" Target="styles.xml"/></Relationships>')


def _core(stamp: dt.datetime) -> str:
    iso = stamp.isoformat() + "Z"
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties xmlns:cp="http://schemas.'
            'openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:creator>reconcile</dc:creator><dcterms:created xsi:type="dcterms:W3CDTF">{iso}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{iso}</dcterms:modified></cp:coreProperties>')
