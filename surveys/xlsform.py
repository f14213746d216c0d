"""XLSForm to compiled definition.

pyxform, the field's own parser, reads the workbook and checks XLSForm structure (types,
groups, choice lists, references). On top of its output we build the definition the
platform stores (see `surveys.definition`): texts keyed by language code and every
expression compiled once by `surveys.expressions`, so the server and the browser evaluate
the same thing. Every problem is reported with the sheet, row and column it sits in.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, NoReturn

import openpyxl
import xlrd
from django.conf import settings
from django.utils.translation import gettext
from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import get_xlsform
from pyxform.xls2xform import convert

from surveys.designs import COLUMN as DESIGN_COLUMN
from surveys.designs import read_designs
from surveys.expressions import ExpressionError, compile_expression

SHEETS = ("survey", "choices", "settings")
EXPRESSION_COLUMNS = {
    # definition key: (where pyxform keeps it, XLSForm column name)
    "relevant": (("bind", "relevant"), "relevant"),
    "constraint": (("bind", "constraint"), "constraint"),
    "calculation": (("bind", "calculate"), "calculation"),
    "choice_filter": (("choice_filter",), "choice_filter"),
    "repeat_count": (("control", "jr:count"), "repeat_count"),
}
TEXT_COLUMNS = {
    # definition key: (where pyxform keeps it, XLSForm column name)
    "label": (("label",), "label"),
    "hint": (("hint",), "hint"),
    "constraint_message": (("bind", "jr:constraintMsg"), "constraint_message"),
    "required_message": (("bind", "jr:requiredMsg"), "required_message"),
}
TYPE_NAMES = {
    "select one": "select_one",
    "select all that apply": "select_multiple",
    "integer": "integer",
    "decimal": "decimal",
    "text": "text",
    "note": "note",
    "date": "date",
    "calculate": "calculate",
}
# Metadata types fill themselves on a device; the platform records paradata instead.
META_TYPES = {
    "start",
    "end",
    "today",
    "deviceid",
    "uri:deviceid",
    "subscriberid",
    "simserial",
    "phonenumber",
    "username",
    "email",
    "audit",
    "start-geopoint",
    "uri:username",
    "uri:email",
}
TRUE_WORDS = {"yes", "true", "true()", "1"}
FALSE_WORDS = {"", "no", "false", "false()", "0"}
LANGUAGE_CODE = re.compile(r"\(([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)?)\)\s*$")
PARENT_REFERENCE = re.compile(r"\.\./([A-Za-z_][\w.-]*)")
SMART_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


@dataclass(frozen=True)
class Problem:
    sheet: str
    row: int | None
    column: str | None
    message: str

    @property
    def location(self) -> str:
        where = [f"sheet '{self.sheet}'"] if self.sheet else []
        if self.row:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        return ", ".join(where)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class XLSFormError(ValueError):
    """The workbook cannot be imported. `problems` lists every one found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class CompiledForm:
    definition: dict[str, Any]
    form_id: str
    version: str
    title: str
    languages: list[str]
    default_language: str
    sha256: str
    warnings: list[str] = field(default_factory=list)


def language_code(declared: str) -> str:
    """'Қазақша (kk)' -> 'kk'; a declaration without a code keeps its name ('English')."""
    match = LANGUAGE_CODE.search(declared)
    return match.group(1).lower() if match else declared.strip()


def compile_xlsform(content: bytes, *, filename: str) -> CompiledForm:
    """Compile an .xlsx or .xls XLSForm. Raises XLSFormError naming every problem found."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in {"xlsx", "xls", "xlsm"}:
        raise XLSFormError(
            [
                Problem(
                    "",
                    None,
                    None,
                    f"'{filename}' is not an Excel workbook: upload an .xlsx or .xls XLSForm.",
                )
            ]
        )
    check_workbook_size(content, suffix)
    headers = _read_headers(content, suffix)
    duplicates = [
        Problem(sheet, 1, header, f"the column header '{header}' appears more than once; keep one.")
        for sheet, sheet_headers in headers.items()
        for header in sorted({h for h in sheet_headers if h and sheet_headers.count(h) > 1})
    ]
    if duplicates:
        raise XLSFormError(duplicates)
    if "survey" not in headers:
        raise XLSFormError(
            [Problem("survey", None, None, "the workbook has no sheet named 'survey'.")]
        )

    try:
        workbook = get_xlsform(io.BytesIO(content), file_type=f".{suffix}")
    except Exception as exc:
        raise XLSFormError(
            [Problem("", None, None, f"the workbook could not be read as an XLSForm: {exc}")]
        ) from exc
    try:
        warnings: list[str] = []
        result = convert(
            io.BytesIO(content), warnings=warnings, file_type=f".{suffix}", form_name="data"
        )
    except PyXFormError as exc:
        raise XLSFormError([_problem_from_pyxform(str(exc), workbook.survey or [])]) from exc
    except Exception as exc:  # pyxform surfaces some structural faults as generic errors
        raise XLSFormError(
            [Problem("", None, None, f"the workbook could not be read as an XLSForm: {exc}")]
        ) from exc

    rows = _row_numbers(workbook.survey)
    compiler = _Compiler(rows=rows, survey_rows=workbook.survey, choice_rows=workbook.choices or [])
    data = result._pyxform or {}
    settings = (workbook.settings or [{}])[0] if workbook.settings else {}
    languages = compiler.collect_languages(data)
    default_language = (
        language_code(str(settings.get("default_language", "")))
        if settings.get("default_language")
        else ""
    )
    if default_language not in languages:
        default_language = languages[0]
    compiler.default_language = default_language
    compiler.languages = languages
    children = compiler.nodes(data.get("children", []))
    choices = compiler.choice_lists(data.get("choices", {}))
    designs, design_problems = read_designs(workbook.survey or [], children, choices)
    compiler.problems += [
        Problem("survey", p.row, DESIGN_COLUMN, p.message) for p in design_problems
    ]
    if compiler.problems:
        raise XLSFormError(compiler.problems)

    sha256 = hashlib.sha256(content).hexdigest()
    form_id = str(data.get("id_string") or settings.get("form_id") or "form")
    version = str(settings.get("version") or f"sha-{sha256[:12]}").strip()
    title = str(data.get("title") or form_id)
    # The title in each language: settings columns form_title_kk, form_title_ru, ...
    # (pyxform has no translated form_title; form_title stays the fallback).
    titles = {
        code: str(settings[f"form_title_{code}"]).strip()
        for code in languages
        if str(settings.get(f"form_title_{code}") or "").strip()
    }
    definition = {
        "form_id": form_id,
        "title": title,
        **({"titles": titles} if titles else {}),
        "version": version,
        "languages": languages,
        "language_names": compiler.language_names,
        "default_language": default_language,
        "style": str(settings.get("style", "")),
        "children": children,
        "choices": choices,
        **({"designs": designs} if designs else {}),
    }
    return CompiledForm(
        definition=definition,
        form_id=form_id,
        version=version,
        title=title,
        languages=languages,
        default_language=default_language,
        sha256=sha256,
        warnings=compiler.warnings
        + compiler.missing_translation_warnings()
        + [w for w in (_clean_pyxform_text(w) for w in warnings) if w],
    )


def check_workbook_size(content: bytes, suffix: str) -> None:
    """Refuse a workbook whose size, or whose unpacked size, is beyond the settings' limits.

    Runs before any parser sees the file, so a decompression bomb (a small .xlsx whose sheet
    XML unpacks to gigabytes) costs only a read of the zip's central directory. The sizes
    checked are the ones the directory declares; Python's zipfile, which openpyxl and
    pyxform read through, never inflates an entry beyond its declared size.
    """
    max_bytes = settings.XLSFORM_MAX_UPLOAD_BYTES
    if len(content) > max_bytes:
        _refuse(
            gettext("The file is larger than the limit of %(mb)s MB for an XLSForm.")
            % {"mb": _megabytes(max_bytes)}
        )
    if suffix == "xls":  # an OLE2 file is not compressed: its size is what xlrd reads
        return
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        _refuse(
            gettext("The file is not a readable Excel workbook (%(error)s).")
            % {"error": exc.__class__.__name__}
        )
    max_entries = settings.XLSFORM_MAX_ENTRIES
    if len(entries) > max_entries:
        _refuse(
            gettext(
                "The workbook holds %(count)d files, more than the limit of %(limit)d for an XLSForm."
            )
            % {"count": len(entries), "limit": max_entries}
        )
    max_unpacked = settings.XLSFORM_MAX_UNCOMPRESSED_BYTES
    total = sum(entry.file_size for entry in entries)
    if total > max_unpacked:
        _refuse(
            gettext(
                "The workbook unpacks to %(size)s MB, more than the limit of %(limit)s MB for an XLSForm."
            )
            % {"size": _megabytes(total), "limit": _megabytes(max_unpacked)}
        )
    max_ratio = settings.XLSFORM_MAX_COMPRESSION_RATIO
    for entry in entries:
        # Small parts (styles, a short sheet) may compress well; only big ones are judged.
        if entry.file_size > RATIO_MIN_BYTES and entry.file_size > max_ratio * max(
            entry.compress_size, 1
        ):
            _refuse(
                gettext(
                    "The part %(name)s of the workbook is compressed %(ratio)d times, more than "
                    "the limit of %(limit)d for an XLSForm."
                )
                % {
                    "name": entry.filename[:80],
                    "ratio": entry.file_size // max(entry.compress_size, 1),
                    "limit": max_ratio,
                }
            )


# Parts smaller than this are not judged by their compression ratio.
RATIO_MIN_BYTES = 1024 * 1024


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}" if size >= 1024 * 1024 else f"{size / (1024 * 1024):.2f}"


def _refuse(message: str) -> NoReturn:
    raise XLSFormError([Problem("", None, None, message)])


def _read_headers(content: bytes, suffix: str) -> dict[str, list[str]]:
    """First-row headers of the XLSForm sheets, read raw so duplicates can be named."""
    headers: dict[str, list[str]] = {}
    try:
        if suffix == "xls":
            book = xlrd.open_workbook(file_contents=content)
            for sheet in book.sheets():
                if sheet.name.strip().lower() in SHEETS and sheet.nrows:
                    headers[sheet.name.strip().lower()] = [
                        str(v).strip() for v in sheet.row_values(0)
                    ]
        else:
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
            for sheet in book.worksheets:
                if sheet.title.strip().lower() in SHEETS:
                    first = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), ())
                    headers[sheet.title.strip().lower()] = [
                        str(v).strip() if v is not None else "" for v in first
                    ]
            book.close()
    except Exception as exc:
        raise XLSFormError(
            [
                Problem(
                    "",
                    None,
                    None,
                    f"the file is not a readable Excel workbook ({exc.__class__.__name__}).",
                )
            ]
        ) from exc
    return headers


def _row_numbers(rows: list[dict[str, Any]]) -> dict[str, int]:
    # pyxform keeps blank rows in place, so a row's spreadsheet number is its index + 2.
    return {
        str(row["name"]).strip(): index + 2 for index, row in enumerate(rows) if row.get("name")
    }


def _clean_pyxform_text(message: str) -> str:
    return re.sub(r"\s*Learn more: \S+", "", message).strip()


def _problem_from_pyxform(message: str, survey_rows: list[dict[str, Any]]) -> Problem:
    """pyxform's message, with its location moved into sheet / row / column."""
    text = _clean_pyxform_text(message)
    row_match = re.search(r"\[row\s*:\s*(\d+)\]", text)
    row = int(row_match.group(1)) if row_match else None
    text = re.sub(r"\[row\s*:\s*\d+\]\s*", "", text)
    sheet_match = re.search(r"'(survey|choices|settings)' sheet", text) or re.search(
        r"sheet named '(\w+)'", text
    )
    sheet = sheet_match.group(1) if sheet_match else ("survey" if row else "")
    text = re.sub(r"^On the '\w+' sheet, ", "", text)
    column_match = re.search(r"the '([\w:() -]+)' (?:value|column)", text)
    column = column_match.group(1) if column_match else None
    if row is None:
        found = _locate(re.findall(r"'([^']+)'", text), survey_rows)
        if found:
            sheet, row, column = "survey", *found
    return Problem(
        sheet, row, column, text[:1].lower() + text[1:] if text else "pyxform refused the form."
    )


def _locate(quoted: list[str], survey_rows: list[dict[str, Any]]) -> tuple[int, str] | None:
    """Row and column of the first survey cell whose type or name is one of the quoted values."""
    wanted = set(quoted)
    for index, cells in enumerate(survey_rows):
        for key in ("type", "name"):
            if str(cells.get(key, "")).strip() in wanted:
                return index + 2, key
    return None


class _Compiler:
    def __init__(self, *, rows: dict[str, int], survey_rows: list[dict], choice_rows: list[dict]):
        self.rows = rows
        self.survey_rows = survey_rows
        self.choice_rows = choice_rows
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.languages: list[str] = []
        self.language_names: dict[str, str] = {}
        self.default_language = "default"
        self.missing: dict[tuple[str, str, str], list[int | None]] = {}

    # -- languages -------------------------------------------------------------------------
    def collect_languages(self, data: dict[str, Any]) -> list[str]:
        found: dict[str, str] = {}

        def visit(value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    if key in {
                        "label",
                        "hint",
                        "jr:constraintMsg",
                        "jr:requiredMsg",
                    } and isinstance(inner, dict):
                        for declared in inner:
                            found.setdefault(language_code(declared), declared)
                    visit(inner)
            elif isinstance(value, list):
                for item in value:
                    visit(item)

        visit(data.get("children", []))
        visit(data.get("choices", {}))
        if len(found) > 1:
            found.pop("default", None)  # untranslated columns fall back to the default language
        self.language_names = {code: name for code, name in found.items()}
        return list(found) or ["default"]

    def texts(self, value: Any, *, sheet: str, row: int | None, column: str) -> dict[str, str]:
        if value in (None, ""):
            return {}
        if isinstance(value, str):
            return {self.default_language: value}
        texts = {language_code(k): str(v) for k, v in value.items() if v not in (None, "")}
        if self.default_language != "default" and "default" in texts:
            texts.setdefault(self.default_language, texts.pop("default"))
        if texts:
            for code in self.languages:
                if code not in texts:
                    self.missing.setdefault((code, sheet, column), []).append(row)
        return texts

    def missing_translation_warnings(self) -> list[str]:
        """One line per language, sheet and column: which rows lack a translation."""
        lines = []
        for (code, sheet, column), rows in self.missing.items():
            shown = ", ".join(str(r) for r in rows[:15]) + (
                f" and {len(rows) - 15} more" if len(rows) > 15 else ""
            )
            name = self.language_names.get(code, code)
            lines.append(
                f"sheet '{sheet}', column '{column}': no {name} translation in rows {shown}."
            )
        return lines

    # -- expressions -----------------------------------------------------------------------
    def expression(self, text: Any, *, row: int | None, column: str) -> list | None:
        if text in (None, ""):
            return None
        # pyxform writes `../name` in the relevant of an or_other's text question.
        source = PARENT_REFERENCE.sub(r"${\1}", str(text).translate(SMART_QUOTES))
        try:
            return compile_expression(source)
        except ExpressionError as exc:
            self.problems.append(Problem("survey", row, column, str(exc)))
            return None

    # -- survey nodes ------------------------------------------------------------------------
    def nodes(self, children: list[dict[str, Any]]) -> list[dict[str, Any]]:
        compiled = []
        for child in children:
            if (
                child.get("name") == "meta"
                and child.get("type") == "group"
                and child.get("control", {}).get("bodyless")
            ):
                continue  # pyxform's own instanceID block; the platform keeps instance ids itself
            node = self.node(child)
            if node is not None:
                compiled.append(node)
        return compiled

    def node(self, item: dict[str, Any]) -> dict[str, Any] | None:
        name = str(item.get("name", ""))
        source_type = str(item.get("type", ""))
        row = self.rows.get(name)
        if source_type in META_TYPES:
            return None
        kind = (
            "group"
            if source_type == "group"
            else "repeat"
            if source_type == "repeat"
            else "question"
        )
        node_type = source_type if kind != "question" else TYPE_NAMES.get(source_type, "")
        if kind == "question" and not node_type:
            node_type = "text"
            self.warnings.append(
                f"sheet 'survey', row {row}: question '{name}' has type '{source_type}', which the web form collects as text."
            )
        bind = item.get("bind", {})
        node: dict[str, Any] = {"kind": kind, "type": node_type, "name": name}
        for key, (path, column) in TEXT_COLUMNS.items():
            node[key] = self.texts(_dig(item, path), sheet="survey", row=row, column=column)
        for key, (path, column) in EXPRESSION_COLUMNS.items():
            node[key] = self.expression(_dig(item, path), row=row, column=column)
        node["required"] = self.flag(bind.get("required"), row=row, column="required")
        node["read_only"] = str(bind.get("readonly", "")).strip().lower() in TRUE_WORDS
        node["appearance"] = str(item.get("control", {}).get("appearance", ""))
        node["default"] = (
            str(item.get("default", "")) if item.get("default") not in (None, "") else None
        )
        if node_type in {"select_one", "select_multiple"}:
            node["list_name"] = str(item.get("list_name") or item.get("itemset") or "")
            if not item.get("choices") and not item.get("list_name"):
                node["type"] = "text"
                self.warnings.append(
                    f"sheet 'survey', row {row}: '{name}' takes its choices from the file '{item.get('itemset')}', "
                    "which is not part of the workbook; the web form collects it as text."
                )
        if kind != "question":
            node["children"] = self.nodes(item.get("children", []))
        return node

    def flag(self, value: Any, *, row: int | None, column: str) -> bool | list:
        text = str(value if value is not None else "").strip()
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        return self.expression(text, row=row, column=column) or False

    # -- choices -----------------------------------------------------------------------------
    def choice_lists(
        self, lists: dict[str, list[dict[str, Any]]]
    ) -> dict[str, list[dict[str, Any]]]:
        rows = {
            (
                str(r.get("list_name") or r.get("list name") or "").strip(),
                str(r.get("name", "")).strip(),
            ): i + 2
            for i, r in enumerate(self.choice_rows)
        }
        compiled: dict[str, list[dict[str, Any]]] = {}
        for list_name, choices in lists.items():
            compiled[list_name] = []
            for choice in choices:
                name = str(choice.get("name", "")).strip()
                row = rows.get((list_name, name))
                compiled[list_name].append(
                    {
                        "name": name,
                        "label": self.texts(
                            choice.get("label"), sheet="choices", row=row, column="label"
                        ),
                        "columns": {
                            k: str(v)
                            for k, v in choice.items()
                            if k not in {"name", "label", "media"} and not isinstance(v, dict)
                        },
                    }
                )
        return compiled


def _dig(item: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
