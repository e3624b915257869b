"""One result table and its three renderings: wide CSV, booktabs LaTeX fragment, markdown.

A ``Table`` holds a (R, C) grid of cells (float, str or NaN = missing) with per-column display
headers (several levels, top first: LaTeX gets ``\\multicolumn`` + ``\\cmidrule`` for the upper
levels, markdown joins them with " / ") and per-row sections (a ``\\midrule`` separates sections).
Bold marks the best value among comparable cells:
- ``bold_by="row"``: in each row, among the columns that share ``Column.group`` (Table 1: our runs
  are compared with each other, the paper's quoted columns with each other);
- ``bold_by="column"``: in each column, among the rows that share a section (ours vs. quoted).
Comparisons use the displayed (rounded) values, so ties are all bold; a group with fewer than two
values gets no bold.

CSV layout (wide): ``<id_name>, label, section, <column keys...>``, one line per row, raw floats.

Cells over seeds (``Spread``: mean, std over the seeds, n seeds) display as ``mean ± std (n)``; bold
compares their means; in the CSV such a column is its mean, followed by ``<key>:std`` and ``<key>:n``.
A table without ``Spread`` cells renders exactly as before they existed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mesc3d.io import write_csv, write_text

MISSING_MD = "–"
MISSING_TEX = "--"


@dataclass(frozen=True)
class Spread:
    """One cell over seeds: mean and sample standard deviation (ddof 1) of ``n`` per-seed values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values) -> "Spread | float":
        vals = [float(v) for v in values]
        if any(math.isnan(v) for v in vals) or not vals:
            return math.nan
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else math.nan
        return cls(m, sd, len(vals))


@dataclass
class Column:
    key: str  # CSV column name
    header: tuple[str, ...]  # display header levels, top first (same depth in one table)
    fmt: str = "{:.2f}"
    better: str | None = None  # "min" | "max" | None (no bold)
    group: str = ""  # bold_by="row": columns compared with each other
    short: str | None = None  # markdown header (default: the header levels joined by " / ")


@dataclass
class Table:
    name: str  # file stem, e.g. "table1_shapenet"
    caption: str  # plain text (markdown); the metric convention included
    caption_tex: str  # LaTeX version of the caption
    id_name: str  # name of the row-key column in the CSV ("category", "exp", ...)
    row_header: str  # display header of the label column
    rows: list[str]  # row keys
    labels: list[str]  # display labels, same length
    sections: list[str]  # section per row ("ours", "paper", "mean", ...); midrule between changes
    columns: list[Column]
    cells: list[list[object]]  # (R, C): float | str | Spread | None
    bold_by: str | None = None  # "row" | "column" | None
    no_bold_sections: tuple[str, ...] = ()  # rows never bolded / compared (e.g. seed statistics)
    resize: bool = True  # shrink the tabular to \linewidth when wider (never enlarge)
    notes: list[str] = field(default_factory=list)  # extra lines under the markdown table

    def __post_init__(self) -> None:
        r, c = len(self.rows), len(self.columns)
        if len(self.labels) != r or len(self.sections) != r or len(self.cells) != r:
            raise ValueError(f"table {self.name}: rows/labels/sections/cells need {r} entries")
        if any(len(line) != c for line in self.cells):
            raise ValueError(f"table {self.name}: every row needs {c} cells, shape (R={r}, C={c})")
        depths = {len(col.header) for col in self.columns}
        if len(depths) > 1:
            raise ValueError(f"table {self.name}: header depths differ {depths}")

    # ---- values --------------------------------------------------------------------------------
    def value(self, i: int, j: int) -> float:
        v = self.cells[i][j]
        if isinstance(v, Spread):
            return v.mean
        return float(v) if isinstance(v, (int, float)) and not _isnan(v) else math.nan

    def shown(self, i: int, j: int) -> float:
        """The value as displayed (rounded by the column format), NaN when missing or text."""
        v = self.value(i, j)
        return math.nan if math.isnan(v) else float(self.columns[j].fmt.format(v))

    def bold(self) -> list[list[bool]]:
        """(R, C) mask of the best comparable values."""
        mask = [[False] * len(self.columns) for _ in self.rows]
        if self.bold_by == "row":
            for i in range(len(self.rows)):
                groups: dict[str, list[int]] = {}
                for j, col in enumerate(self.columns):
                    if col.better:
                        groups.setdefault(col.group, []).append(j)
                for cols in groups.values():
                    _mark(mask, [(i, j) for j in cols], self)
        elif self.bold_by == "column":
            for j, col in enumerate(self.columns):
                if not col.better:
                    continue
                by_section: dict[str, list[int]] = {}
                for i, sec in enumerate(self.sections):
                    if sec not in self.no_bold_sections:
                        by_section.setdefault(sec, []).append(i)
                for rows in by_section.values():
                    _mark(mask, [(i, j) for i in rows], self)
        return mask

    def frame(self) -> pd.DataFrame:
        """Wide DataFrame: id_name, label, section, then one column per ``Column.key``."""
        data = {self.id_name: self.rows, "label": self.labels, "section": self.sections}
        for j, col in enumerate(self.columns):
            data[col.key] = [r[j] if isinstance(r[j], str) else self.value(i, j) for i, r in enumerate(self.cells)]
            if any(isinstance(r[j], Spread) for r in self.cells):
                data[f"{col.key}:std"] = [r[j].std if isinstance(r[j], Spread) else math.nan for r in self.cells]
                data[f"{col.key}:n"] = [r[j].n if isinstance(r[j], Spread) else math.nan for r in self.cells]
        return pd.DataFrame(data)

    def text(self, i: int, j: int, missing: str) -> str:
        c = self.cells[i][j]
        if isinstance(c, str):
            return c
        v = self.value(i, j)
        if isinstance(c, Spread) and not math.isnan(v):
            fmt = self.columns[j].fmt
            return f"{fmt.format(v)} ± {missing if math.isnan(c.std) else fmt.format(c.std)} ({c.n})"
        return missing if math.isnan(v) else self.columns[j].fmt.format(v)


def _isnan(v: object) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _mark(mask: list[list[bool]], cells: list[tuple[int, int]], t: Table) -> None:
    vals = [(t.shown(i, j), i, j) for i, j in cells]
    vals = [x for x in vals if not math.isnan(x[0])]
    if len(vals) < 2:
        return
    better = t.columns[cells[0][1]].better
    best = min(v for v, _, _ in vals) if better == "min" else max(v for v, _, _ in vals)
    for v, i, j in vals:
        if v == best:
            mask[i][j] = True


# ---- LaTeX --------------------------------------------------------------------------------------
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_TEX_UNICODE = {
    "²": r"$^{2}$", "×": r"$\times$", "↓": r"$\downarrow$", "↑": r"$\uparrow$", "–": "--",
    "—": "---", "±": r"$\pm$", "½": r"$\frac{1}{2}$", "‖": r"$\|$", "√": r"$\surd$", "≤": r"$\leq$",
    "<": r"$<$", ">": r"$>$", "·": r"$\cdot$", "’": "'", "“": "``", "”": "''",
    "†": r"$^{\dagger}$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few non-ASCII symbols we use to ASCII LaTeX."""
    out = "".join(_TEX_SPECIAL.get(ch, _TEX_UNICODE.get(ch, ch)) for ch in text)
    bad = sorted({ch for ch in out if ord(ch) > 127})
    if bad:
        raise ValueError(f"no LaTeX mapping for characters {bad} in {text!r}")
    return out


def _header_lines(t: Table) -> list[str]:
    depth = len(t.columns[0].header) if t.columns else 1
    lines = []
    for level in range(depth - 1):
        cells, rules, j = [""], [], 0
        while j < len(t.columns):
            key = t.columns[j].header[: level + 1]
            n = 1
            while j + n < len(t.columns) and t.columns[j + n].header[: level + 1] == key:
                n += 1
            text = latex_escape(key[-1])
            cells.append(rf"\multicolumn{{{n}}}{{c}}{{{text}}}" if n > 1 else text)
            if key[-1]:
                rules.append(rf"\cmidrule(lr){{{j + 2}-{j + n + 1}}}")
            j += n
        lines.append(" & ".join(cells) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    last = [latex_escape(t.row_header)] + [latex_escape(c.header[-1]) for c in t.columns]
    lines.append(" & ".join(last) + r" \\")
    return lines


def render_latex(t: Table) -> str:
    """A ``table`` float: caption, label, booktabs tabular (\\toprule/\\midrule/\\bottomrule)."""
    mask = t.bold()
    spec = "l" + "".join("r" if c.better or c.fmt != "{}" else "l" for c in t.columns)
    body = [r"\begin{tabular}{" + spec + "}", r"\toprule", *_header_lines(t), r"\midrule"]
    for i in range(len(t.rows)):
        if i > 0 and t.sections[i] != t.sections[i - 1]:
            body.append(r"\midrule")
        cells = [latex_escape(t.labels[i])]
        for j in range(len(t.columns)):
            s = (latex_escape(t.text(i, j, MISSING_TEX)) if isinstance(t.cells[i][j], (str, Spread))
                 else t.text(i, j, MISSING_TEX))
            cells.append(rf"\textbf{{{s}}}" if mask[i][j] else s)
        body.append(" & ".join(cells) + r" \\")
    body += [r"\bottomrule", r"\end{tabular}"]
    tabular = "\n".join(body)
    if t.resize:
        tabular = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%" + "\n" + tabular + "%\n}"
    return "\n".join([
        f"% generated by `mesc3d tables` ({t.name}); booktabs + graphicx",
        r"\begin{table}[htbp]",
        r"\centering",
        r"\caption{" + t.caption_tex + "}",
        r"\label{tab:" + t.name.replace("_", "-") + "}",
        r"\small",
        tabular,
        r"\end{table}",
        "",
    ])


# ---- markdown -----------------------------------------------------------------------------------
def _md_cell(s: str) -> str:
    return s.replace("|", r"\|")


def render_markdown(t: Table) -> str:
    """Plain pipe table (GitHub markdown) with the caption as a paragraph above it."""
    mask = t.bold()
    heads = [t.row_header]
    for c in t.columns:
        if c.short is not None:
            heads.append(c.short)
            continue
        parts: list[str] = []
        for h in c.header:
            if h and h not in parts:
                parts.append(h)
        heads.append(" / ".join(parts))
    lines = [f"**{t.name}.** {t.caption}", "", "| " + " | ".join(_md_cell(h) for h in heads) + " |"]
    lines.append("|" + "---|" + "".join("---:|" if c.fmt != "{}" else "---|" for c in t.columns))
    for i in range(len(t.rows)):
        cells = [_md_cell(t.labels[i])]
        for j in range(len(t.columns)):
            s = _md_cell(t.text(i, j, MISSING_MD))
            cells.append(f"**{s}**" if mask[i][j] else s)
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"{n}" for n in t.notes] + ([""] if t.notes else [])
    return "\n".join(lines)


# ---- writers ------------------------------------------------------------------------------------
def write_table(t: Table, out_dir: str | Path) -> list[Path]:
    """Write ``<name>.csv`` (wide), ``<name>.tex`` and ``<name>.md`` atomically; return the paths."""
    out = Path(out_dir)
    paths = [out / f"{t.name}.csv", out / f"{t.name}.tex", out / f"{t.name}.md"]
    write_csv(paths[0], t.frame())
    write_text(paths[1], render_latex(t))
    write_text(paths[2], render_markdown(t))
    return paths


def tidy_frame(tables: list[Table]) -> pd.DataFrame:
    """All numeric cells of all tables, one per line: table, row, label, section, column, value."""
    recs = []
    for t in tables:
        for i, row in enumerate(t.rows):
            for j, col in enumerate(t.columns):
                v = t.value(i, j)
                if not math.isnan(v):
                    recs.append((t.name, row, t.labels[i], t.sections[i], col.key, v))
    return pd.DataFrame(recs, columns=["table", "row", "label", "section", "column", "value"])


def render_all_tex(names: list[str], title: str = "MESC-3D re-implementation: result tables") -> str:
    """A standalone document that ``\\input``s the fragments (compile inside the tables folder)."""
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", n):
            raise ValueError(f"table name {n!r} is not a plain file stem")
    inputs = "\n".join(rf"\input{{{n}.tex}}" for n in names)
    return "\n".join([
        "% generated by `mesc3d tables`; compile with: cd results/tables && pdflatex all.tex",
        r"\documentclass{article}",
        r"\usepackage{booktabs}",
        r"\usepackage{graphicx}",
        r"\begin{document}",
        r"\section*{" + latex_escape(title) + "}",
        inputs if names else r"No tables.",
        r"\end{document}",
        "",
    ])
