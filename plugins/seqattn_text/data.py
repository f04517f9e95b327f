"""Reading parallel text from a :class:`seqattn.config.DataSource` through ``datasets``."""

from __future__ import annotations

from pathlib import Path

from seqattn.config import DataSource
from seqattn.errors import SeqattnError

FORMATS = {".jsonl": "json", ".json": "json", ".tsv": "csv", ".csv": "csv", ".parquet": "parquet"}


def read_pairs(source: DataSource, src_lang: str, tgt_lang: str, where: str) -> tuple[list[str], list[str]]:
    """Source and target sentences of one split. ``where`` names the recipe key for errors."""
    if source.files is not None and "{lang}" in source.files:
        src, tgt = (_read_lines(source.files.replace("{lang}", lang), where) for lang in (src_lang, tgt_lang))
        if len(src) != len(tgt):
            raise SeqattnError(f"{where}.files: {len(src)} {src_lang} lines but {len(tgt)} {tgt_lang} lines")
    else:
        rows = _rows(source, where)
        src, tgt = _columns(rows, src_lang, tgt_lang, where)
    if source.limit is not None:
        src, tgt = src[: source.limit], tgt[: source.limit]
    return src, tgt


def _read_lines(path: str, where: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise SeqattnError(f"{where}.files: file not found: {path}")
    return p.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _rows(source: DataSource, where: str):
    if source.corpus is not None:
        return source.corpus.build()
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        if source.hub is not None:
            return datasets.load_dataset(source.hub, source.config, split=source.split or "train")
        suffix = Path(source.files).suffix.lower()
        if suffix not in FORMATS:
            raise SeqattnError(f"{where}.files: unknown format {suffix!r}; expected one of {', '.join(FORMATS)}")
        extra = {"delimiter": "\t"} if suffix == ".tsv" else {}
        return datasets.load_dataset(FORMATS[suffix], data_files=source.files, split="train", **extra)
    except SeqattnError:
        raise
    except Exception as exc:
        raise SeqattnError(f"{where}: cannot load data: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None


def _columns(rows, src_lang: str, tgt_lang: str, where: str) -> tuple[list[str], list[str]]:
    """Rows in the hub's translation schema ``{"translation": {lang: text}}`` or flat ``{lang: text}``."""
    names = rows.column_names if hasattr(rows, "column_names") else (list(rows[0]) if rows else [])
    if "translation" in names:
        pairs = rows["translation"] if hasattr(rows, "column_names") else [r["translation"] for r in rows]
        try:
            return [p[src_lang] for p in pairs], [p[tgt_lang] for p in pairs]
        except (KeyError, TypeError):
            raise SeqattnError(f"{where}: rows' 'translation' lacks {src_lang!r} or {tgt_lang!r}") from None
    if src_lang in names and tgt_lang in names:
        if hasattr(rows, "column_names"):
            return list(rows[src_lang]), list(rows[tgt_lang])
        return [r[src_lang] for r in rows], [r[tgt_lang] for r in rows]
    raise SeqattnError(f"{where}: expected a 'translation' column or columns {src_lang!r} and {tgt_lang!r}, found {names}")
